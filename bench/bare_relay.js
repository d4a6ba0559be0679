// The Node.js ceiling: a WebSocket <-> TCP relay on the `ws` package (npm, bench/package.json)
// that forwards raw chunks without looking at them, beside bench/bare_relay.py (its Tornado
// twin). The same shape: no token, no framing, a canned select/connect of its own (the
// stand-in's mode from the `hostname` query argument), the `guacamole` subprotocol, TCP_NODELAY
// on both sockets, and what guacd sends forwarded read by read. Like the Python one it reads
// guacd only as fast as the browser takes it (no unbounded buffering behind a slow browser),
// and, as no parsing is the point, it skips ws's UTF-8 check of what the browser sends.
// Run: node bench/bare_relay.js PORT GUACD_PORT
'use strict';
const http = require('http');
const net = require('net');
const {WebSocketServer} = require('ws');

const [port, guacdPort] = process.argv.slice(2).map(Number);
const HIGH_WATER = 65536;       // bytes queued towards the browser before guacd is paused

const server = http.createServer((req, res) => { res.writeHead(426); res.end(); });
const wss = new WebSocketServer({
    server, perMessageDeflate: false, skipUTF8Validation: true, maxPayload: 1 << 20,
    handleProtocols: (protocols) => (protocols.has('guacamole') ? 'guacamole' : false),
});

wss.on('connection', (ws, req) => {
    req.socket.setNoDelay(true);
    const mode = new URL(req.url, 'http://relay').searchParams.get('hostname') || 'idle';
    const guacd = net.connect({port: guacdPort, host: '127.0.0.1', noDelay: true});
    guacd.write(`6.select,3.vnc;7.connect,${Buffer.byteLength(mode)}.${mode},0.,0.;`);
    let paused = false;
    const sent = () => {
        if (paused && ws.bufferedAmount < HIGH_WATER) {
            paused = false;
            guacd.resume();
        }
    };
    guacd.on('data', (chunk) => {
        ws.send(chunk, {binary: false}, sent);
        if (ws.bufferedAmount >= HIGH_WATER) {
            paused = true;
            guacd.pause();
        }
    });
    guacd.on('end', () => ws.close());
    guacd.on('error', () => ws.terminate());
    ws.on('message', (data) => guacd.write(data));
    ws.on('close', () => guacd.destroy());
    ws.on('error', () => guacd.destroy());
});

server.listen(port, '127.0.0.1', 4096, () => console.log('ready'));
