//! dSprites (Matthey et al. 2017), generated procedurally: no download.
//!
//! 64×64 binary images of a square, an ellipse or a heart, over 6 scales × 40 orientations ×
//! 32 × 32 positions: 737,280 images, indexed in the original's order
//! `(((shape·6 + scale)·40 + orientation)·32 + x)·32 + y`. Factor values follow the original
//! (`shape` 1–3, `scale` 0.5–1, `orientation` 0–2π inclusive, `x`/`y` 0–1).
//! The rendering is ours (pixel-centre sampling of an implicit shape), not a copy of the
//! original bitmaps: same factors and layout, similar appearance.

/// Image side in pixels.
pub const SIZE: usize = 64;
/// Number of shapes (square, ellipse, heart).
pub const SHAPES: usize = 3;
/// Number of scale values.
pub const SCALES: usize = 6;
/// Number of orientation values.
pub const ORIENTATIONS: usize = 40;
/// Number of positions along each axis.
pub const POSITIONS: usize = 32;
/// Total number of images.
pub const LEN: usize = SHAPES * SCALES * ORIENTATIONS * POSITIONS * POSITIONS;
/// Names of the five factors, in [`Factors::values`] order.
pub const FACTOR_NAMES: [&str; 5] = ["shape", "scale", "orientation", "pos_x", "pos_y"];
/// Names of the shapes, by shape index.
pub const SHAPE_NAMES: [&str; 3] = ["square", "ellipse", "heart"];

/// The generating factors of one image, as indices.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Factors {
    /// 0 square, 1 ellipse, 2 heart.
    pub shape: usize,
    /// 0..6.
    pub scale: usize,
    /// 0..40.
    pub orientation: usize,
    /// 0..32, left to right.
    pub pos_x: usize,
    /// 0..32, top to bottom.
    pub pos_y: usize,
}

impl Factors {
    /// Factors of image `index` (< [`LEN`]).
    pub fn from_index(index: usize) -> Self {
        assert!(index < LEN, "dSprites index {index} out of range");
        let pos_y = index % POSITIONS;
        let i = index / POSITIONS;
        let pos_x = i % POSITIONS;
        let i = i / POSITIONS;
        let orientation = i % ORIENTATIONS;
        let i = i / ORIENTATIONS;
        let scale = i % SCALES;
        let shape = i / SCALES;
        Self {
            shape,
            scale,
            orientation,
            pos_x,
            pos_y,
        }
    }

    /// Index of the image with these factors.
    pub fn index(&self) -> usize {
        (((self.shape * SCALES + self.scale) * ORIENTATIONS + self.orientation) * POSITIONS
            + self.pos_x)
            * POSITIONS
            + self.pos_y
    }

    /// Factor values as in the original `latents_values` (without its constant colour):
    /// shape 1–3, scale 0.5–1, orientation 0–2π, x and y 0–1.
    pub fn values(&self) -> [f32; 5] {
        [
            (self.shape + 1) as f32,
            0.5 + 0.1 * self.scale as f32,
            std::f32::consts::TAU * self.orientation as f32 / (ORIENTATIONS - 1) as f32,
            self.pos_x as f32 / (POSITIONS - 1) as f32,
            self.pos_y as f32 / (POSITIONS - 1) as f32,
        ]
    }

    /// Centre of the shape in pixel coordinates `(x, y)`.
    pub fn centre(&self) -> (f32, f32) {
        let v = self.values();
        (16.0 + 32.0 * v[3], 16.0 + 32.0 * v[4])
    }

    /// Radius of the shape's unit box in pixels.
    pub fn radius(&self) -> f32 {
        12.0 * self.values()[1]
    }

    /// Renders the image: 64×64 row-major bytes, 0 or 255.
    pub fn render(&self) -> Vec<u8> {
        let mut img = vec![0u8; SIZE * SIZE];
        self.render_into(&mut img);
        img
    }

    /// Renders into a 64×64 buffer.
    pub fn render_into(&self, img: &mut [u8]) {
        let (cx, cy) = self.centre();
        let r = self.radius();
        let theta = self.values()[2];
        let (s, c) = theta.sin_cos();
        for py in 0..SIZE {
            for px in 0..SIZE {
                let dx = px as f32 + 0.5 - cx;
                let dy = py as f32 + 0.5 - cy;
                let u = (dx * c + dy * s) / r;
                let v = (-dx * s + dy * c) / r;
                img[py * SIZE + px] = if inside(self.shape, u, v) { 255 } else { 0 };
            }
        }
    }
}

/// Whether unit-box coordinates `(u, v)` (v pointing down) fall inside the shape.
fn inside(shape: usize, u: f32, v: f32) -> bool {
    match shape {
        0 => u.abs() <= 0.8 && v.abs() <= 0.8,
        1 => u * u + (v / 0.5) * (v / 0.5) <= 1.0,
        _ => {
            // Heart: (x² + y² − 1)³ − x² y³ ≤ 0, y up, scaled into the unit box.
            let x = 1.15 * u;
            let y = -1.1 * v + 0.1;
            let a = x * x + y * y - 1.0;
            a * a * a - x * x * y * y * y <= 0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_factors_round_trip() {
        assert_eq!(LEN, 737_280);
        for index in [0, 1, 31, 32, 1023, 1024, 40_959, 40_960, 245_760, LEN - 1] {
            assert_eq!(Factors::from_index(index).index(), index);
        }
        let last = Factors::from_index(LEN - 1);
        assert_eq!(
            (
                last.shape,
                last.scale,
                last.orientation,
                last.pos_x,
                last.pos_y
            ),
            (2, 5, 39, 31, 31)
        );
    }

    fn centroid_and_area(img: &[u8]) -> (f32, f32, usize) {
        let (mut sx, mut sy, mut n) = (0.0, 0.0, 0);
        for (i, &p) in img.iter().enumerate() {
            if p > 0 {
                sx += (i % SIZE) as f32 + 0.5;
                sy += (i / SIZE) as f32 + 0.5;
                n += 1;
            }
        }
        (sx / n as f32, sy / n as f32, n)
    }

    #[test]
    fn image_centroid_follows_position_factors() {
        for &(shape, x, y) in &[(0, 0, 0), (1, 31, 0), (0, 10, 25), (1, 31, 31)] {
            let f = Factors {
                shape,
                scale: 3,
                orientation: 7,
                pos_x: x,
                pos_y: y,
            };
            let (mx, my, _) = centroid_and_area(&f.render());
            let (cx, cy) = f.centre();
            // Square and ellipse are centrally symmetric: the centroid is the centre.
            assert!(
                (mx - cx).abs() < 0.6 && (my - cy).abs() < 0.6,
                "{f:?}: {mx},{my} vs {cx},{cy}"
            );
        }
    }

    #[test]
    fn area_grows_with_scale_and_matches_the_shape() {
        for shape in 0..SHAPES {
            let areas: Vec<usize> = (0..SCALES)
                .map(|scale| {
                    let f = Factors {
                        shape,
                        scale,
                        orientation: 0,
                        pos_x: 16,
                        pos_y: 16,
                    };
                    centroid_and_area(&f.render()).2
                })
                .collect();
            assert!(
                areas.windows(2).all(|w| w[1] > w[0]),
                "shape {shape}: {areas:?}"
            );
        }
        // Square of half-side 0.8 r: area (1.6 r)²; ellipse π r · r/2, at r = 12 (scale 1.0).
        let area = |shape| {
            centroid_and_area(
                &Factors {
                    shape,
                    scale: 5,
                    orientation: 0,
                    pos_x: 16,
                    pos_y: 16,
                }
                .render(),
            )
            .2 as f32
        };
        assert!((area(0) - 368.64).abs() < 25.0, "square {}", area(0));
        assert!((area(1) - 226.19).abs() < 20.0, "ellipse {}", area(1));
        assert!(area(2) > 150.0);
    }

    #[test]
    fn every_image_stays_inside_the_frame() {
        // Largest shapes at the extreme positions, every orientation: no pixel on the border.
        for shape in 0..SHAPES {
            for orientation in (0..ORIENTATIONS).step_by(3) {
                for &(x, y) in &[(0, 0), (31, 31), (0, 31)] {
                    let f = Factors {
                        shape,
                        scale: 5,
                        orientation,
                        pos_x: x,
                        pos_y: y,
                    };
                    let img = f.render();
                    assert!(img.iter().any(|&p| p > 0));
                    for i in 0..SIZE {
                        assert_eq!(img[i], 0, "{f:?} touches the top border");
                        assert_eq!(img[i * SIZE], 0, "{f:?} touches the left border");
                    }
                }
            }
        }
    }

    #[test]
    fn rotation_changes_the_ellipse_but_shapes_differ_from_each_other() {
        let f = |shape, orientation| {
            Factors {
                shape,
                scale: 5,
                orientation,
                pos_x: 16,
                pos_y: 16,
            }
            .render()
        };
        assert_ne!(f(1, 0), f(1, 10));
        assert_ne!(f(0, 0), f(1, 0));
        assert_ne!(f(1, 0), f(2, 0));
        // 0 and 2π (orientation 39) are the same angle.
        assert_eq!(f(1, 0), f(1, 39));
    }
}
