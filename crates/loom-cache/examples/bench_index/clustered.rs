//! Seeded unit vectors grouped like sentence embeddings: topics, subtopics within them, and
//! points around each subtopic, so near neighbours are close and unrelated ones are not
//! (uniform noise would make every neighbour equally far and tell nothing about recall).

/// A deterministic generator of clustered unit vectors.
pub struct ClusteredVectors {
    rng: SplitMix64,
    dimensions: usize,
    subtopics: Vec<Vec<f32>>,
}

/// How far a subtopic sits from its topic, and a point from its subtopic (norm of the noise
/// added to a unit vector): points of one subtopic have cosine about 0.7 to each other and
/// about 0.5 to the rest of their topic, like questions on one subject with MiniLM.
const SUBTOPIC_SPREAD: f32 = 0.8;
const POINT_SPREAD: f32 = 0.6;
const PARAPHRASE_SPREAD: f32 = 0.4;

impl ClusteredVectors {
    /// `topics` topics of `subtopics_per_topic` subtopics each, from `seed`.
    pub fn new(seed: u64, dimensions: usize, topics: usize, subtopics_per_topic: usize) -> Self {
        let mut rng = SplitMix64(seed);
        let mut subtopics = Vec::with_capacity(topics * subtopics_per_topic);
        for _ in 0..topics {
            let topic = rng.unit_vector(dimensions);
            for _ in 0..subtopics_per_topic {
                subtopics.push(rng.around(&topic, SUBTOPIC_SPREAD));
            }
        }
        ClusteredVectors { rng, dimensions, subtopics }
    }

    /// The next vector: a random subtopic plus noise, L2-normalised.
    pub fn next_vector(&mut self) -> Vec<f32> {
        if self.subtopics.is_empty() {
            return self.rng.unit_vector(self.dimensions);
        }
        let index = (self.rng.next_u64() % self.subtopics.len() as u64) as usize;
        let centre = self.subtopics[index].clone();
        self.rng.around(&centre, POINT_SPREAD)
    }

    /// A vector near `vector` (cosine about 0.93), as a paraphrase's embedding is near the
    /// question's.
    pub fn paraphrase_of(&mut self, vector: &[f32]) -> Vec<f32> {
        self.rng.around(vector, PARAPHRASE_SPREAD)
    }

    /// A uniformly random u64 from the same stream (for picking partitions and ids).
    pub fn next_u64(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

/// SplitMix64: small, seeded, good enough for test data.
struct SplitMix64(u64);

impl SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1].
    fn next_unit_interval(&mut self) -> f64 {
        ((self.next_u64() >> 11) + 1) as f64 / (1u64 << 53) as f64
    }

    /// Standard normal (Box-Muller).
    fn gaussian(&mut self) -> f32 {
        let radius = (-2.0 * self.next_unit_interval().ln()).sqrt();
        let angle = std::f64::consts::TAU * self.next_unit_interval();
        (radius * angle.cos()) as f32
    }

    fn unit_vector(&mut self, dimensions: usize) -> Vec<f32> {
        let mut vector: Vec<f32> = (0..dimensions).map(|_| self.gaussian()).collect();
        normalise(&mut vector);
        vector
    }

    /// `centre` plus gaussian noise of norm about `spread`, L2-normalised.
    fn around(&mut self, centre: &[f32], spread: f32) -> Vec<f32> {
        let scale = spread / (centre.len() as f32).sqrt();
        let mut vector: Vec<f32> = centre.iter().map(|c| c + scale * self.gaussian()).collect();
        normalise(&mut vector);
        vector
    }
}

/// Scales `vector` to length 1 (leaves a zero vector alone).
pub fn normalise(vector: &mut [f32]) {
    let norm = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if norm > 0.0 {
        vector.iter_mut().for_each(|x| *x /= norm);
    }
}
