//! Checking, normalising and comparing embedding vectors.

use super::IndexError;

/// A copy of `vector` scaled to length 1, or why it cannot be indexed.
pub(crate) fn normalised(vector: &[f32], dimensions: usize) -> Result<Vec<f32>, IndexError> {
    if vector.len() != dimensions {
        return Err(IndexError::WrongDimension { expected: dimensions, got: vector.len() });
    }
    if let Some(position) = vector.iter().position(|value| !value.is_finite()) {
        return Err(IndexError::NonFinite { position });
    }
    // In f64: the squares of large finite f32 values overflow f32.
    let norm = vector.iter().map(|&value| f64::from(value) * f64::from(value)).sum::<f64>().sqrt();
    if norm == 0.0 || !norm.is_finite() {
        return Err(IndexError::ZeroVector);
    }
    Ok(vector.iter().map(|&value| (f64::from(value) / norm) as f32).collect())
}

/// The dot product of two vectors of the same length (cosine similarity for unit vectors),
/// with AVX2 when the CPU has it (twice as wide as the SSE2 every x86-64 has).
pub(crate) fn dot(left: &[f32], right: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU supports the feature `dot_avx2` is compiled for (checked
            // just above); the function itself is safe Rust.
            return unsafe { dot_avx2(left, right) };
        }
    }
    dot_portable(left, right)
}

/// [`dot_portable`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn dot_avx2(left: &[f32], right: &[f32]) -> f32 {
    dot_portable(left, right)
}

/// Independent running sums: the compiler vectorises the loop over them (one running sum
/// cannot be reordered in floating point and stays scalar, about 4x slower).
const LANES: usize = 16;

/// The dot product, vectorised for whatever the caller is compiled for.
#[inline(always)]
fn dot_portable(left: &[f32], right: &[f32]) -> f32 {
    let mut sums = [0f32; LANES];
    let left_chunks = left.chunks_exact(LANES);
    let right_chunks = right.chunks_exact(LANES);
    let tail: f32 = left_chunks.remainder().iter().zip(right_chunks.remainder()).map(|(a, b)| a * b).sum();
    for (a, b) in left_chunks.zip(right_chunks) {
        for lane in 0..LANES {
            sums[lane] += a[lane] * b[lane];
        }
    }
    sums.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalises_and_refuses_what_cannot_be_compared() {
        assert_eq!(normalised(&[3.0, 4.0], 2), Ok(vec![0.6, 0.8]));
        assert_eq!(normalised(&[1.0], 2), Err(IndexError::WrongDimension { expected: 2, got: 1 }));
        assert_eq!(normalised(&[1.0, f32::NAN], 2), Err(IndexError::NonFinite { position: 1 }));
        assert_eq!(normalised(&[f32::INFINITY, 0.0], 2), Err(IndexError::NonFinite { position: 0 }));
        assert_eq!(normalised(&[0.0, 0.0], 2), Err(IndexError::ZeroVector));
        let huge = normalised(&[f32::MAX, f32::MAX], 2).unwrap();
        assert!((huge[0] - std::f32::consts::FRAC_1_SQRT_2).abs() < 1e-6);
    }

    #[test]
    fn dot_matches_the_plain_sum_for_any_length() {
        for length in [0, 1, 7, 8, 9, 384, 385] {
            let left: Vec<f32> = (0..length).map(|i| (i as f32 * 0.37).sin()).collect();
            let right: Vec<f32> = (0..length).map(|i| (i as f32 * 0.11).cos()).collect();
            let plain: f32 = left.iter().zip(&right).map(|(a, b)| a * b).sum();
            assert!((dot(&left, &right) - plain).abs() < 1e-3, "length {length}");
            assert!((dot_portable(&left, &right) - plain).abs() < 1e-3, "length {length}");
        }
    }
}
