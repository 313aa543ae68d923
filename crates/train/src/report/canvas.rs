//! The drawing primitives of the reports: an RGB picture with antialiased shapes (tiny-skia),
//! text in an embedded subset of DejaVu Sans (ab_glyph, so no system font is needed), written
//! as a PNG.
use ab_glyph::{Font, FontRef, PxScale, ScaleFont, point};
use anyhow::{Context, Result};
use tiny_skia::{
    Color, FillRule, LineCap, LineJoin, Paint, PathBuilder, Pixmap, Rect, Stroke, StrokeDash,
    Transform,
};

/// DejaVu Sans cut down to ASCII and a few symbols; its licence is beside it.
const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans-subset.ttf");

#[derive(Clone, Copy)]
pub(super) struct Rgb(pub(super) u8, pub(super) u8, pub(super) u8);

pub(super) const INK: Rgb = Rgb(30, 30, 30);
pub(super) const MUTED: Rgb = Rgb(105, 105, 105);
pub(super) const GRID: Rgb = Rgb(228, 228, 228);
pub(super) const FRAME: Rgb = Rgb(160, 160, 160);
pub(super) const WHITE: Rgb = Rgb(255, 255, 255);

#[derive(Clone, Copy)]
pub(super) enum Align {
    Left,
    Center,
    Right,
}

/// An RGB picture with a font.
pub(super) struct Canvas {
    pixmap: Pixmap,
    font: FontRef<'static>,
}

fn paint(color: Rgb) -> Paint<'static> {
    let mut paint = Paint::default();
    paint.set_color(Color::from_rgba8(color.0, color.1, color.2, 255));
    paint.anti_alias = true;
    paint
}

impl Canvas {
    pub(super) fn new((width, height): (u32, u32)) -> Result<Self> {
        let mut pixmap = Pixmap::new(width, height).context("cannot allocate the picture")?;
        pixmap.fill(Color::WHITE);
        let font =
            FontRef::try_from_slice(FONT).context("the embedded font is not a TrueType font")?;
        Ok(Self { pixmap, font })
    }

    pub(super) fn rect(&mut self, x: f32, y: f32, width: f32, height: f32, color: Rgb) {
        if let Some(rect) = Rect::from_xywh(x, y, width, height) {
            self.pixmap
                .fill_rect(rect, &paint(color), Transform::identity(), None);
        }
    }

    pub(super) fn outline(&mut self, x: f32, y: f32, width: f32, height: f32, color: Rgb) {
        let corners = [
            (x, y),
            (x + width, y),
            (x + width, y + height),
            (x, y + height),
            (x, y),
        ];
        self.line(&corners, color, 1.0, false);
    }

    pub(super) fn line(&mut self, points: &[(f32, f32)], color: Rgb, width: f32, dashed: bool) {
        let Some((&(x0, y0), rest)) = points.split_first() else {
            return;
        };
        if rest.is_empty() {
            return;
        }
        let mut path = PathBuilder::new();
        path.move_to(x0, y0);
        for &(x, y) in rest {
            path.line_to(x, y);
        }
        let Some(path) = path.finish() else { return };
        let stroke = Stroke {
            width,
            line_cap: if dashed {
                LineCap::Butt
            } else {
                LineCap::Round
            },
            line_join: LineJoin::Round,
            dash: if dashed {
                StrokeDash::new(vec![7.0, 5.0], 0.0)
            } else {
                None
            },
            ..Stroke::default()
        };
        self.pixmap
            .stroke_path(&path, &paint(color), &stroke, Transform::identity(), None);
    }

    pub(super) fn dot(&mut self, x: f32, y: f32, radius: f32, color: Rgb) {
        if let Some(path) = PathBuilder::from_circle(x, y, radius) {
            self.pixmap.fill_path(
                &path,
                &paint(color),
                FillRule::Winding,
                Transform::identity(),
                None,
            );
        }
    }

    pub(super) fn ring(&mut self, x: f32, y: f32, radius: f32, color: Rgb, width: f32) {
        if let Some(path) = PathBuilder::from_circle(x, y, radius) {
            let stroke = Stroke {
                width,
                ..Stroke::default()
            };
            self.pixmap
                .stroke_path(&path, &paint(color), &stroke, Transform::identity(), None);
        }
    }

    /// Swatches and labels in one centred row, their vertical middle at `y`.
    pub(super) fn legend_row(&mut self, entries: &[(&str, Rgb, bool)], x: f32, y: f32) {
        let (size, swatch, gap) = (13.0, 28.0, 26.0);
        let widths: Vec<f32> = entries
            .iter()
            .map(|(label, _, _)| swatch + 8.0 + self.text_width(label, size))
            .collect();
        let total = widths.iter().sum::<f32>() + gap * (entries.len().saturating_sub(1)) as f32;
        let mut left = x - total / 2.0;
        for ((label, color, dashed), width) in entries.iter().zip(widths) {
            self.line(&[(left, y), (left + swatch, y)], *color, 2.5, *dashed);
            self.text(label, left + swatch + 8.0, y, size, INK, Align::Left);
            left += width + gap;
        }
    }

    pub(super) fn text_width(&self, text: &str, size: f32) -> f32 {
        let font = self.font.as_scaled(PxScale::from(size));
        let mut previous = None;
        let mut width = 0.0;
        for ch in text.chars() {
            let id = font.glyph_id(ch);
            if let Some(p) = previous {
                width += font.kern(p, id);
            }
            width += font.h_advance(id);
            previous = Some(id);
        }
        width
    }

    /// `text`, shortened with an ellipsis to fit in `width` pixels.
    pub(super) fn fit(&self, text: &str, size: f32, width: f32) -> String {
        if self.text_width(text, size) <= width {
            return text.to_string();
        }
        let mut chars: Vec<char> = text.chars().collect();
        while !chars.is_empty() {
            chars.pop();
            let candidate: String = chars.iter().collect::<String>() + "…";
            if self.text_width(&candidate, size) <= width {
                return candidate;
            }
        }
        String::new()
    }

    /// Coverage of the rendered line of text, row by row, with its width and height.
    fn rasterize(&self, text: &str, size: f32) -> (Vec<f32>, usize, usize) {
        let scale = PxScale::from(size);
        let font = self.font.as_scaled(scale);
        let width = self.text_width(text, size).ceil() as usize + 2;
        let height = (font.ascent() - font.descent()).ceil() as usize + 1;
        let mut coverage = vec![0.0f32; width * height];
        let mut caret = 0.0;
        let mut previous = None;
        for ch in text.chars() {
            let id = font.glyph_id(ch);
            if let Some(p) = previous {
                caret += font.kern(p, id);
            }
            let glyph = id.with_scale_and_position(scale, point(caret, font.ascent()));
            caret += font.h_advance(id);
            previous = Some(id);
            let Some(outlined) = self.font.outline_glyph(glyph) else {
                continue;
            };
            let bounds = outlined.px_bounds();
            outlined.draw(|gx, gy, c| {
                let x = bounds.min.x as i64 + gx as i64;
                let y = bounds.min.y as i64 + gy as i64;
                if (0..width as i64).contains(&x) && (0..height as i64).contains(&y) {
                    let cell = &mut coverage[y as usize * width + x as usize];
                    *cell = (*cell + c).min(1.0);
                }
            });
        }
        (coverage, width, height)
    }

    /// Text with its vertical middle at `y`.
    pub(super) fn text(&mut self, text: &str, x: f32, y: f32, size: f32, color: Rgb, align: Align) {
        let (coverage, width, height) = self.rasterize(text, size);
        let left = match align {
            Align::Left => x,
            Align::Center => x - width as f32 / 2.0,
            Align::Right => x - width as f32,
        }
        .round() as i64;
        let top = (y - height as f32 / 2.0).round() as i64;
        for row in 0..height {
            for col in 0..width {
                self.blend(
                    left + col as i64,
                    top + row as i64,
                    color,
                    coverage[row * width + col],
                );
            }
        }
    }

    /// Text reading upwards (turned a quarter left), centred on `x`, its end at `top`.
    pub(super) fn text_up(&mut self, text: &str, x: f32, top: f32, size: f32, color: Rgb) {
        let (coverage, width, height) = self.rasterize(text, size);
        let left = (x - height as f32 / 2.0).round() as i64;
        let top = top.round() as i64;
        for row in 0..height {
            for col in 0..width {
                let (dx, dy) = (row as i64, (width - 1 - col) as i64);
                self.blend(left + dx, top + dy, color, coverage[row * width + col]);
            }
        }
    }

    /// Source-over of an opaque colour at `alpha` onto one pixel (premultiplied RGBA).
    fn blend(&mut self, x: i64, y: i64, color: Rgb, alpha: f32) {
        let (w, h) = (self.pixmap.width() as i64, self.pixmap.height() as i64);
        if alpha <= 0.0 || !(0..w).contains(&x) || !(0..h).contains(&y) {
            return;
        }
        let i = (y * w + x) as usize * 4;
        let data = self.pixmap.data_mut();
        for (k, source) in [color.0, color.1, color.2, 255].into_iter().enumerate() {
            data[i + k] =
                (source as f32 * alpha + data[i + k] as f32 * (1.0 - alpha)).round() as u8;
        }
    }

    /// The picture as an RGB PNG. The background is opaque, so the premultiplied pixels are the
    /// plain colours.
    pub(super) fn png(&self) -> Result<Vec<u8>> {
        let rgb: Vec<u8> = self
            .pixmap
            .data()
            .chunks_exact(4)
            .flat_map(|p| [p[0], p[1], p[2]])
            .collect();
        super::png::encode_rgb(self.pixmap.width(), self.pixmap.height(), &rgb)
    }
}
