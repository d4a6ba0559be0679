// guacamole-lite (from npm, bench/package.json) pointed at the guacd stand-in, quiet.
// Run: node bench/lite_server.js PORT GUACD_PORT KEY   (KEY: 32 characters, AES-256-CBC)
const GuacamoleLite = require('guacamole-lite');

const [port, guacdPort, key] = process.argv.slice(2);
new GuacamoleLite(
    {port: Number(port), host: '127.0.0.1'},
    {host: '127.0.0.1', port: Number(guacdPort)},
    {crypt: {cypher: 'AES-256-CBC', key: key}, log: {level: 'QUIET'}});
console.log('ready');
