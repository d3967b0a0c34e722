//! The image operations, with no WebAssembly in them: the component calls [`apply`], and
//! the benchmark (`bench/src/bin/image_resize.rs`) compiles this same file natively to
//! compare.
//!
//! A query names operations applied in order — `resize=WxH` (fit inside, keeping the
//! aspect ratio), `crop=X,Y,W,H`, `rotate=90|180|270`, `flip=h|v` — and the output
//! `format=png|jpeg` (default: the input's), `quality=1..100` for JPEG.

use std::io::Cursor;

use image::codecs::jpeg::JpegEncoder;
use image::imageops::FilterType;
use image::{DynamicImage, ImageFormat, ImageReader, Limits};

/// Largest side accepted, in pixels, of an input or a requested size.
pub const MAX_SIDE: u32 = 12_000;
/// Most bytes decoding may allocate (a 24-megapixel photo as RGBA is ~96 MB).
const MAX_DECODE_BYTES: u64 = 256 * 1024 * 1024;

/// An encoded image and its media type.
pub struct Output {
    /// The encoded bytes.
    pub bytes: Vec<u8>,
    /// `image/png` or `image/jpeg`.
    pub content_type: &'static str,
    /// Width and height.
    pub size: (u32, u32),
}

/// Decodes `input`, applies the query's operations, encodes the result.
pub fn apply(input: &[u8], query: &str) -> Result<Output, String> {
    let mut reader = ImageReader::new(Cursor::new(input)).with_guessed_format().map_err(|e| e.to_string())?;
    let mut format = match reader.format() {
        Some(f @ (ImageFormat::Png | ImageFormat::Jpeg)) => f,
        _ => return Err("the body is not a PNG or JPEG image".into()),
    };
    let mut limits = Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let mut image = reader.decode().map_err(|e| format!("the image could not be decoded: {e}"))?;
    let mut quality = 85u8;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        image = match key {
            "resize" => {
                let (w, h) = two(value, 'x').ok_or_else(|| format!("resize `{value}`: expected WIDTHxHEIGHT, e.g. 320x240"))?;
                image.resize(w, h, FilterType::Triangle)
            }
            "crop" => {
                let [x, y, w, h] = numbers(value).ok_or_else(|| format!("crop `{value}`: expected X,Y,WIDTH,HEIGHT"))?;
                if w == 0 || h == 0 || x.saturating_add(w) > image.width() || y.saturating_add(h) > image.height() {
                    return Err(format!("crop `{value}` is not inside the {}x{} image", image.width(), image.height()));
                }
                image.crop_imm(x, y, w, h)
            }
            "rotate" => match value {
                "90" => image.rotate90(),
                "180" => image.rotate180(),
                "270" => image.rotate270(),
                _ => return Err(format!("rotate `{value}`: expected 90, 180 or 270")),
            },
            "flip" => match value {
                "h" => image.fliph(),
                "v" => image.flipv(),
                _ => return Err(format!("flip `{value}`: expected h or v")),
            },
            "format" => {
                format = match value {
                    "png" => ImageFormat::Png,
                    "jpeg" | "jpg" => ImageFormat::Jpeg,
                    _ => return Err(format!("format `{value}`: expected png or jpeg")),
                };
                image
            }
            "quality" => {
                quality =
                    value.parse().ok().filter(|q| (1..=100).contains(q)).ok_or_else(|| format!("quality `{value}`: expected 1 to 100"))?;
                image
            }
            _ => return Err(format!("unknown operation `{key}`: use resize, crop, rotate, flip, format or quality")),
        };
    }
    encode(&image, format, quality)
}

fn encode(image: &DynamicImage, format: ImageFormat, quality: u8) -> Result<Output, String> {
    let mut bytes = Vec::new();
    let content_type = if format == ImageFormat::Jpeg {
        // JPEG has no alpha channel.
        let rgb = image.to_rgb8();
        rgb.write_with_encoder(JpegEncoder::new_with_quality(&mut bytes, quality)).map_err(|e| e.to_string())?;
        "image/jpeg"
    } else {
        image.write_to(&mut Cursor::new(&mut bytes), ImageFormat::Png).map_err(|e| e.to_string())?;
        "image/png"
    };
    Ok(Output { bytes, content_type, size: (image.width(), image.height()) })
}

/// `AxB` as two sides within [`MAX_SIDE`].
fn two(value: &str, separator: char) -> Option<(u32, u32)> {
    let (a, b) = value.split_once(separator)?;
    let (a, b) = (a.parse().ok()?, b.parse().ok()?);
    (a > 0 && b > 0 && a <= MAX_SIDE && b <= MAX_SIDE).then_some((a, b))
}

/// Four comma-separated numbers.
fn numbers(value: &str) -> Option<[u32; 4]> {
    let parts: Vec<u32> = value.split(',').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    parts.try_into().ok()
}
