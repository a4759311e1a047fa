"""Writes test images the Rust image encoders cannot: `make_images.py cmyk OUT.jpg` writes a
CMYK JPEG (Adobe-style, as Photoshop saves print files) of a red square on white."""
import sys

from PIL import Image


def main():
    kind, out = sys.argv[1], sys.argv[2]
    if kind == "cmyk":
        img = Image.new("CMYK", (320, 240), (0, 0, 0, 0))
        img.paste((0, 255, 255, 0), (0, 0, 160, 120))  # red: no cyan, full magenta and yellow
        img.save(out, "JPEG", quality=95)
    else:
        raise SystemExit(f"unknown kind {kind}")


if __name__ == "__main__":
    main()
