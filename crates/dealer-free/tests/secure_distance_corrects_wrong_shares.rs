#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! With more than 2t − 1 servers, the querier decodes each candidate's masked distance
//! shares as a Reed–Solomon codeword: wrong shares are corrected and their senders named;
//! exactly 2t − 1 answers open without correction; fewer are an error naming who answered.

use dealer_free::mpc::local::LocalCollection;
use dealer_free::mpc::share_hash_bits;
use phr_sis::fp61::Fp61;
use phr_sis::{ImageHash, ImageId, NodeId, Threshold};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// With more than 2t − 1 servers, wrong distance shares are corrected and their senders named.
#[test]
fn wrong_distance_shares_are_corrected_and_named() {
    use dealer_free::mpc::open::open_distances;
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    for (t, n, cheaters) in [
        (2u8, 5u8, vec![4u8]),
        (2, 7, vec![2, 6]),
        (3, 7, vec![1]),
        (3, 9, vec![3, 9]),
    ] {
        let servers: Vec<NodeId> = NodeId::first(n).collect();
        let hashes: Vec<ImageHash> = (0..6).map(|_| ImageHash(rng.random())).collect();
        let query = ImageHash(rng.random());
        let images: Vec<(ImageId, ImageHash)> = (0u64..)
            .zip(&hashes)
            .map(|(i, h)| (ImageId(i), *h))
            .collect();
        let collection =
            LocalCollection::ingest(Threshold::new(t, n).unwrap(), &images, &mut rng).unwrap();
        let mut pools = collection
            .deal_masks(&servers, hashes.len(), &mut rng)
            .unwrap();
        let q = share_hash_bits(query, t, &servers, &mut rng).unwrap();
        let candidates: Vec<usize> = (0..hashes.len()).collect();
        let mut answers: Vec<(NodeId, Vec<Fp61>)> = q
            .iter()
            .map(|(j, share)| {
                let pool = pools.get_mut(j).unwrap();
                (*j, collection.answer(*j, &candidates, share, pool).unwrap())
            })
            .collect();
        for (id, values) in &mut answers {
            if cheaters.contains(&id.get()) {
                values[1] += Fp61::from(5u8);
                values[4] = Fp61::random(&mut rng);
            }
        }
        let refs: Vec<(NodeId, &[Fp61])> =
            answers.iter().map(|(id, v)| (*id, v.as_slice())).collect();
        let opened = open_distances(&refs, t).unwrap();
        let expected: Vec<u32> = hashes.iter().map(|h| h.hamming(query)).collect();
        assert_eq!(opened.distances, expected, "({t},{n})");
        let named: Vec<u8> = opened.wrong.iter().map(|id| id.get()).collect();
        assert_eq!(named, cheaters, "({t},{n})");
        // Exactly 2t − 1 answers open without correction; fewer is an error naming them.
        let quorum = usize::from(2 * t - 1);
        let honest: Vec<(NodeId, &[Fp61])> = refs
            .iter()
            .filter(|(id, _)| !cheaters.contains(&id.get()))
            .take(quorum)
            .copied()
            .collect();
        assert_eq!(open_distances(&honest, t).unwrap().distances, expected);
        let err = open_distances(&honest[..quorum - 1], t).unwrap_err();
        assert!(
            err.to_string().contains(&format!("2t − 1 = {quorum}")),
            "{err}"
        );
    }
}
