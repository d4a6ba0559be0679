"""What tests compare screens with: JavaScript for Playwright's ``evaluate``, and the X
server's own picture of a desktop."""
import struct

from PIL import Image

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


def xwd_image(data: bytes) -> Image.Image:
    """An X window dump (``xwd -root``) of a 24-bit TrueColor display as a Pillow image:
    what the desktop's own X server shows, to compare with what was drawn from guacd."""
    (header_size, _, _, _, width, height, _, byte_order, _, _, _, bits_per_pixel,
     bytes_per_line, _, _, _, _, _, _, colours) = struct.unpack(">20I", data[:80])
    if bits_per_pixel != 32:
        raise ValueError(f"xwd with {bits_per_pixel} bits per pixel: a 24-bit display expected")
    start = header_size + 12 * colours
    mode = "BGRX" if byte_order == 0 else "XRGB"
    return Image.frombytes("RGB", (width, height), data[start:start + bytes_per_line * height],
                           "raw", mode, bytes_per_line)
