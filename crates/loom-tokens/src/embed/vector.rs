//! The embedding vector and its comparisons.

/// A sentence embedding: a vector of `f32`, unit length when it comes from
/// [`Embedder`](super::Embedder).
#[derive(Debug, Clone, PartialEq)]
pub struct Embedding(Box<[f32]>);

impl Embedding {
    /// Wraps a vector as it is (e.g. one from a provider's embeddings endpoint).
    pub fn new(vector: impl Into<Box<[f32]>>) -> Embedding {
        Embedding(vector.into())
    }

    /// Wraps `vector` scaled to unit length (left as is when it is all zeros).
    pub fn normalized(vector: impl Into<Box<[f32]>>) -> Embedding {
        let mut vector = vector.into();
        let norm = norm(&vector);
        if norm > 0.0 {
            vector.iter_mut().for_each(|x| *x /= norm);
        }
        Embedding(vector)
    }

    /// Number of dimensions.
    pub fn dims(&self) -> usize {
        self.0.len()
    }

    /// The components.
    pub fn as_slice(&self) -> &[f32] {
        &self.0
    }

    /// Euclidean length (1 for the embedder's vectors, up to rounding).
    pub fn norm(&self) -> f32 {
        norm(&self.0)
    }

    /// Dot product; equal to [`Embedding::cosine`] for unit vectors. Vectors of different
    /// dimensions are not comparable and give 0.
    pub fn dot(&self, other: &Embedding) -> f32 {
        if self.dims() != other.dims() {
            return 0.0;
        }
        self.0.iter().zip(other.0.iter()).map(|(a, b)| a * b).sum()
    }

    /// Cosine similarity in [-1, 1]; 0 when either vector is all zeros or the dimensions differ.
    pub fn cosine(&self, other: &Embedding) -> f32 {
        let norms = self.norm() * other.norm();
        if norms > 0.0 { (self.dot(other) / norms).clamp(-1.0, 1.0) } else { 0.0 }
    }
}

impl From<Vec<f32>> for Embedding {
    fn from(vector: Vec<f32>) -> Embedding {
        Embedding::new(vector)
    }
}

fn norm(vector: &[f32]) -> f32 {
    vector.iter().map(|x| x * x).sum::<f32>().sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalized_vectors_have_unit_length_and_dot_equals_cosine() {
        let a = Embedding::normalized(vec![3.0, 4.0]);
        let b = Embedding::normalized(vec![4.0, 3.0]);
        assert_eq!(a.as_slice(), [0.6, 0.8]);
        assert!((a.norm() - 1.0).abs() < 1e-6);
        assert!((a.dot(&b) - 0.96).abs() < 1e-6);
        assert!((a.cosine(&b) - 0.96).abs() < 1e-6);
    }

    #[test]
    fn zero_and_mismatched_vectors_compare_as_unrelated() {
        let zero = Embedding::normalized(vec![0.0, 0.0]);
        assert_eq!(zero.as_slice(), [0.0, 0.0]);
        assert_eq!(zero.cosine(&Embedding::new(vec![1.0, 0.0])), 0.0);
        assert_eq!(Embedding::new(vec![1.0]).dot(&Embedding::new(vec![1.0, 0.0])), 0.0);
        assert_eq!(Embedding::new(vec![1.0]).cosine(&Embedding::new(vec![1.0, 0.0])), 0.0);
    }

    #[test]
    fn cosine_does_not_need_unit_vectors() {
        let a = Embedding::new(vec![2.0, 0.0]);
        assert_eq!(a.cosine(&Embedding::new(vec![0.0, 5.0])), 0.0);
        assert_eq!(a.cosine(&Embedding::new(vec![-1.0, 0.0])), -1.0);
    }
}
