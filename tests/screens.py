"""What browser tests compare screens with: JavaScript for Playwright's ``evaluate``."""

# How many pixels of two same-sized PNGs (data URLs) differ visibly.
COMPARE = """async ([a, b]) => {
  const load = (src) => new Promise((ok, bad) => {
    const img = new Image(); img.onload = () => ok(img); img.onerror = bad; img.src = src;
  });
  const pixels = (img) => {
    const canvas = document.createElement('canvas');
    canvas.width = img.width; canvas.height = img.height;
    const g = canvas.getContext('2d'); g.drawImage(img, 0, 0);
    return g.getImageData(0, 0, img.width, img.height).data;
  };
  const [x, y] = await Promise.all([load(a), load(b)]);
  if (x.width !== y.width || x.height !== y.height) {
    return { differing: -1, sizes: [x.width, x.height, y.width, y.height] };
  }
  const p = pixels(x), q = pixels(y);
  let differing = 0;
  for (let i = 0; i < p.length; i += 4) {
    if (Math.abs(p[i] - q[i]) + Math.abs(p[i + 1] - q[i + 1])
        + Math.abs(p[i + 2] - q[i + 2]) > 48) {
      differing++;
    }
  }
  return { differing, total: p.length / 4 };
}"""


# How many of the console's display pixels (every 97th) are not black: the desktop was drawn.
# A display not sized yet (0 wide, right after connecting) has none lit, rather than an error.
COUNT_LIT_PIXELS = """() => {
    const canvas = window.guacbridge.display.getDefaultLayer().getCanvas();
    if (!canvas.width || !canvas.height) return 0;
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    let lit = 0;
    for (let i = 0; i < data.length; i += 4 * 97) if (data[i] + data[i+1] + data[i+2]) lit++;
    return lit;
}"""
