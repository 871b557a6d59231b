//! Data loaders whose random streams are functions of (seed, epoch), so that a resumed run
//! sees exactly what the uninterrupted one saw.
//!
//! burn's own shuffling loader advances one RNG from epoch to epoch, and Burn's CPU backends
//! draw the reparameterisation noise from one process-wide RNG: a run resumed at epoch N + 1
//! would restart both streams and train on other batches and other noise. [`EpochLoader`]
//! instead, each time the Learner starts an epoch (calls `iter()`):
//! - orders the data set by a permutation drawn from `mix(seed, epoch)` (training split), and
//! - reseeds the device from `mix(seed, epoch, split)`, so every random draw of that epoch
//!   (noise, VQ dead-code restarts) depends on the seed and the epoch only, and
//! - draws dynamically binarised training images from `mix(seed, epoch)` (see
//!   [`ae_data::Binarize::Dynamic`]).
//!
//! With `num_workers = 1` batches arrive in a fixed order; with more workers their order
//! depends on thread timing (burn's loader interleaves the workers' partitions).
use ae_core::ImageBatch;
use ae_data::{ImageBatcher, ImageDataset, ImageItem};
use burn::data::dataloader::{DataLoader, DataLoaderBuilder, DataLoaderIterator};
use burn::data::dataset::{Dataset, DatasetError};
use burn::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

pub use ae_data::seeded::{mix, splitmix64};

/// The order of the training images in `epoch` (from 1): a Fisher–Yates shuffle driven by
/// SplitMix64 from `mix(seed, epoch)`. Written out here rather than taken from `rand` so that
/// the order is fixed by this code, not by a dependency's version.
pub fn epoch_permutation(len: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut state = mix(&[seed, epoch as u64, 0x5348_5546]);
    let mut next = || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        splitmix64(state)
    };
    let mut order: Vec<usize> = (0..len).collect();
    for i in (1..len).rev() {
        // Lemire's multiply-shift maps 64 random bits to [0, i] (bias < 2^-40 for these sizes).
        let j = ((next() as u128 * (i as u128 + 1)) >> 64) as usize;
        order.swap(i, j);
    }
    order
}

/// Which split a loader feeds: the two get different noise streams.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Split {
    /// Shuffled every epoch; noise stream 1.
    Train,
    /// Fixed order; noise stream 2.
    Valid,
}

/// A data set seen through the current epoch's permutation (and, for dynamically binarised
/// training images, the current epoch's draws).
struct Ordered {
    inner: ImageDataset,
    order: RwLock<Option<Arc<Vec<usize>>>>,
    /// Seed of this epoch's random pixel draws (training split of a resampled data set).
    draws: RwLock<Option<u64>>,
}

impl Dataset<ImageItem> for Ordered {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        let i = match &*self.order.read().expect("order lock") {
            Some(order) => order[index],
            None => index,
        };
        match *self.draws.read().expect("draws lock") {
            Some(seed) => self.inner.get_resampled(i, seed),
            None => self.inner.get(i),
        }
    }

    fn len(&self) -> usize {
        self.inner.len()
    }
}

/// A burn `DataLoader` whose epoch `e` is a function of (seed, e) only; see the module doc.
#[derive(Clone)]
pub struct EpochLoader {
    inner: Arc<dyn DataLoader<ImageBatch>>,
    data: Arc<Ordered>,
    /// The epoch the next `iter()` starts; shared by the clones burn makes (`to_device`).
    next_epoch: Arc<AtomicUsize>,
    seed: u64,
    split: Split,
    device: Device,
    /// 0 for a whole epoch, else 1 + the first item of this part (see `slice`).
    part: u64,
}

impl EpochLoader {
    /// A loader of `data` in batches of `batch_size`, whose next `iter()` is epoch
    /// `first_epoch` (1 for a new run, N + 1 when resuming after epoch N).
    pub fn new(
        data: ImageDataset,
        batcher: ImageBatcher,
        batch_size: usize,
        num_workers: usize,
        split: Split,
        seed: u64,
        first_epoch: usize,
        device: &Device,
    ) -> Self {
        let data = Arc::new(Ordered {
            inner: data,
            order: RwLock::new(None),
            draws: RwLock::new(None),
        });
        let inner = DataLoaderBuilder::new(batcher)
            .batch_size(batch_size)
            .num_workers(num_workers)
            .set_device(device.clone())
            .build(SharedData(data.clone()));
        Self {
            inner,
            data,
            next_epoch: Arc::new(AtomicUsize::new(first_epoch)),
            seed,
            split,
            device: device.clone(),
            part: 0,
        }
    }
}

/// `Arc<Ordered>` as a `Dataset` (burn's builder takes the data set by value).
struct SharedData(Arc<Ordered>);

impl Dataset<ImageItem> for SharedData {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        self.0.get(index)
    }

    fn len(&self) -> usize {
        self.0.len()
    }
}

impl DataLoader<ImageBatch> for EpochLoader {
    fn iter<'a>(&'a self) -> Box<dyn DataLoaderIterator<ImageBatch> + 'a> {
        let epoch = self.next_epoch.fetch_add(1, Ordering::SeqCst);
        if self.split == Split::Train {
            let order = epoch_permutation(self.data.len(), self.seed, epoch);
            *self.data.order.write().expect("order lock") = Some(Arc::new(order));
            if self.data.inner.resampled() {
                *self.data.draws.write().expect("draws lock") =
                    Some(mix(&[self.seed, epoch as u64, 0x6269_6e61_7279]));
            }
        }
        let stream = match self.split {
            Split::Train => 1,
            Split::Valid => 2,
        };
        if self.part == 0 {
            self.device.seed(mix(&[self.seed, epoch as u64, stream]));
        } else {
            self.device
                .seed(mix(&[self.seed, epoch as u64, stream, self.part]));
        }
        self.inner.iter()
    }

    fn num_items(&self) -> usize {
        self.inner.num_items()
    }

    fn to_device(&self, device: &Device) -> Arc<dyn DataLoader<ImageBatch>> {
        Arc::new(Self {
            inner: self.inner.to_device(device),
            device: device.clone(),
            ..self.clone()
        })
    }

    /// A part of every epoch (multi-device training gives each device one). Each part
    /// counts epochs itself, so all parts order the data set by the same epoch's
    /// permutation, and draws its noise from its own stream (`start` is mixed in).
    fn slice(&self, start: usize, end: usize) -> Arc<dyn DataLoader<ImageBatch>> {
        Arc::new(Self {
            inner: self.inner.slice(start, end),
            next_epoch: Arc::new(AtomicUsize::new(self.next_epoch.load(Ordering::SeqCst))),
            part: start as u64 + 1,
            ..self.clone()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_are_permutations_and_differ_by_epoch_and_seed() {
        let a = epoch_permutation(1000, 1, 1);
        let mut sorted = a.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..1000).collect::<Vec<_>>());
        assert_eq!(
            a,
            epoch_permutation(1000, 1, 1),
            "a function of (seed, epoch)"
        );
        assert_ne!(a, epoch_permutation(1000, 1, 2));
        assert_ne!(a, epoch_permutation(1000, 2, 1));
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
        assert!(epoch_permutation(0, 1, 1).is_empty());
        assert_eq!(epoch_permutation(1, 1, 1), vec![0]);
        // Pinned values: the order must not change with a dependency or a refactor, or every
        // recorded result moves.
        assert_eq!(&a[..6], &PINNED);
    }

    const PINNED: [usize; 6] = [363, 443, 46, 995, 157, 209];

    #[test]
    fn every_position_is_equally_likely() {
        // 20,000 shuffles of 4 items: each item lands in each slot ≈ 5,000 times.
        let mut counts = [[0usize; 4]; 4];
        for e in 0..20_000 {
            for (slot, &item) in epoch_permutation(4, 7, e).iter().enumerate() {
                counts[item][slot] += 1;
            }
        }
        for row in counts {
            for c in row {
                assert!((4_700..5_300).contains(&c), "{counts:?}");
            }
        }
    }

    #[test]
    fn mixed_seeds_depend_on_every_part_and_its_position() {
        assert_ne!(mix(&[1, 2]), mix(&[2, 1]));
        assert_ne!(mix(&[1, 2, 1]), mix(&[1, 2, 2]));
        assert_eq!(mix(&[5, 6]), mix(&[5, 6]));
    }

    /// The pixels of every image of an epoch, in the order the loader gives them.
    fn epoch_images(loader: &dyn DataLoader<ImageBatch>) -> Vec<Vec<f32>> {
        let mut out = Vec::new();
        for batch in loader.iter() {
            let images = batch.unwrap().images;
            let per = images.dims()[1..].iter().product::<usize>();
            let v = images.into_data().try_to_vec::<f32>().unwrap();
            out.extend(v.chunks(per).map(<[f32]>::to_vec));
        }
        out
    }

    #[test]
    fn parts_of_an_epoch_cover_it_once_in_the_same_order() {
        // Multi-device training gives each device a part of each epoch (`slice`): together
        // the parts are the epoch, in the order of the whole loader's permutation.
        let cfg = ae_data::DataConfig::dsprites(Some(12));
        let (data, _) = cfg.load().unwrap();
        let device = Device::flex();
        let make = || {
            EpochLoader::new(
                data.clone(),
                cfg.batcher(),
                3,
                1,
                Split::Train,
                5,
                1,
                &device,
            )
        };
        let whole = epoch_images(&make());
        assert_eq!(whole.len(), 12);
        let loader = make();
        let parts = [loader.slice(0, 6), loader.slice(6, 12)];
        let joined: Vec<Vec<f32>> = parts
            .iter()
            .flat_map(|p| epoch_images(p.as_ref()))
            .collect();
        assert!(joined == whole, "the parts differ from the whole epoch");
        // The next epoch is a new permutation for every part alike.
        let second: Vec<Vec<f32>> = parts
            .iter()
            .flat_map(|p| epoch_images(p.as_ref()))
            .collect();
        let loader2 = make();
        let _ = epoch_images(&loader2);
        assert!(second == epoch_images(&loader2));
        assert!(second != joined);
    }
}
