//! Tampering with a share store's file behind its back: a flipped byte in a stored value, a
//! record moved to another id or table, a record without a tag, a deleted row, a store opened
//! under another node's key. Each read of the damaged image fails with an error naming it and
//! the part; the other images stay readable and the bad bytes are never returned.

use std::error::Error;
use std::path::Path;

use phr_sis::ImageId;
use phr_sis::store::{ImageRecord, MacKey, ShareStore, StoreError};
use rand::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use redb::{ReadableTable, TableDefinition};

type TestResult = Result<(), Box<dyn Error>>;

/// The store's tables, as its module documentation lays them out.
const SHARE_TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("image_share");
const BIT_SHARES_TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("image_bit_shares");
const META_TABLE: TableDefinition<u64, &[u8]> = TableDefinition::new("image_meta");

const MARKER_LEN: usize = 48;

fn key() -> MacKey {
    MacKey::from_bytes(*b"node-7 integrity key, 32 bytes!!")
}

/// A random marker that occurs nowhere else (48 random bytes).
fn marker(rng: &mut ChaCha8Rng) -> Vec<u8> {
    let mut m = vec![0; MARKER_LEN];
    rng.fill_bytes(&mut m);
    m
}

/// `len` random bytes with `marker` at `at`.
fn value_with_marker(rng: &mut ChaCha8Rng, len: usize, marker: &[u8], at: usize) -> Vec<u8> {
    let mut v = vec![0; len];
    rng.fill_bytes(&mut v);
    v[at..at + marker.len()].copy_from_slice(marker);
    v
}

struct Fixture {
    ids: Vec<ImageId>,
    records: Vec<ImageRecord>,
    /// Per image: markers inside its share, bit shares and metadata.
    markers: Vec<[Vec<u8>; 3]>,
}

/// Stores six images, each part holding a unique marker, and closes the store.
fn build(path: &Path) -> Result<Fixture, Box<dyn Error>> {
    let mut rng = ChaCha8Rng::seed_from_u64(0x7a3e_4e11);
    let store = ShareStore::open(path, key())?;
    let mut fixture = Fixture {
        ids: Vec::new(),
        records: Vec::new(),
        markers: Vec::new(),
    };
    for i in 0..6u64 {
        let id = ImageId(0xa0 + i);
        let m = [marker(&mut rng), marker(&mut rng), marker(&mut rng)];
        let record = ImageRecord {
            share: value_with_marker(&mut rng, 40_000 + 1000 * i as usize, &m[0], 12_345),
            bit_shares: value_with_marker(&mut rng, 4096, &m[1], 100),
            meta: value_with_marker(&mut rng, 64, &m[2], 8),
        };
        store.put_image(id, &record)?;
        fixture.ids.push(id);
        fixture.records.push(record);
        fixture.markers.push(m);
    }
    Ok(fixture)
}

/// Flips bit 0 of byte `offset` of every occurrence of `pattern` in the file (copy-on-write
/// may have left stale copies of a page; the live one is among them). Returns how many.
fn flip_in_file(path: &Path, pattern: &[u8], offset: usize) -> Result<usize, Box<dyn Error>> {
    let mut bytes = std::fs::read(path)?;
    let starts: Vec<usize> = bytes
        .windows(pattern.len())
        .enumerate()
        .filter(|(_, w)| *w == pattern)
        .map(|(i, _)| i)
        .collect();
    for &s in &starts {
        bytes[s + offset] ^= 0x01;
    }
    std::fs::write(path, bytes)?;
    Ok(starts.len())
}

fn assert_corrupt<T: std::fmt::Debug>(
    result: Result<T, StoreError>,
    id: ImageId,
    what: &str,
) -> TestResult {
    match result {
        Err(StoreError::Corrupt { id: got, what: w }) if got == id && w == what => {
            let message = StoreError::Corrupt { id, what: w }.to_string();
            assert_eq!(
                message,
                format!("{what} of image {id} failed its integrity check")
            );
            Ok(())
        }
        other => Err(format!("expected Corrupt({id}, {what}), got {other:?}").into()),
    }
}

fn assert_others_intact(store: &ShareStore, fixture: &Fixture, skip: &[ImageId]) -> TestResult {
    for (id, record) in fixture.ids.iter().zip(&fixture.records) {
        if !skip.contains(id) {
            assert_eq!(store.get_image(*id)?.as_ref(), Some(record), "image {id}");
        }
    }
    Ok(())
}

#[test]
fn flipped_byte_on_disk_is_reported_for_that_image_only() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    let fixture = build(&path)?;

    // Image 1: a byte of its share; image 2: its bit shares; image 3: its metadata.
    let targets = [
        (1, 0, "stored share"),
        (2, 1, "stored bit shares"),
        (3, 2, "stored metadata"),
    ];
    for (image, part, _) in targets {
        let found = flip_in_file(&path, &fixture.markers[image][part], 17)?;
        assert!(
            found >= 1,
            "marker of image {image} part {part} not in the file"
        );
    }

    let store = ShareStore::open(&path, key())?;
    for (image, part, what) in targets {
        let id = fixture.ids[image];
        assert_corrupt(store.get_image(id), id, what)?;
        let single = match part {
            0 => store.get_share(id),
            1 => store.get_bit_shares(id),
            _ => store.get_meta(id),
        };
        assert_corrupt(single, id, what)?;
        // The untouched parts of the same image still read.
        if part != 0 {
            assert_eq!(
                store.get_share(id)?,
                Some(fixture.records[image].share.clone())
            );
        }
        assert!(store.contains(id)?);
    }
    assert_others_intact(
        &store,
        &fixture,
        &[fixture.ids[1], fixture.ids[2], fixture.ids[3]],
    )?;

    // The damaged image can be deleted and stored again; the store keeps working.
    let id = fixture.ids[1];
    assert!(store.delete_image(id)?);
    store.put_image(id, &fixture.records[1])?;
    assert_eq!(store.get_image(id)?.as_ref(), Some(&fixture.records[1]));
    assert_eq!(store.len()?, 6);
    Ok(())
}

#[test]
fn wrong_node_key_fails_every_read() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    let fixture = build(&path)?;

    let other = ShareStore::open(&path, MacKey::from_bytes([0x42; 32]))?;
    for &id in &fixture.ids {
        assert_corrupt(other.get_image(id), id, "stored share")?;
        assert_corrupt(other.get_share(id), id, "stored share")?;
        assert_corrupt(other.get_bit_shares(id), id, "stored bit shares")?;
        assert_corrupt(other.get_meta(id), id, "stored metadata")?;
    }
    // Listing does not read records.
    assert_eq!(other.list(None, 100)?.ids, fixture.ids);
    drop(other);

    let store = ShareStore::open(&path, key())?;
    assert_others_intact(&store, &fixture, &[])?;
    Ok(())
}

#[test]
fn records_rewritten_in_the_raw_tables_are_rejected() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    let fixture = build(&path)?;
    let [a, b, c, d, e, _] = fixture.ids[..] else {
        return Err("fixture has six images".into());
    };

    {
        let db = redb::Database::create(&path)?;
        let txn = db.begin_write()?;
        {
            let mut shares = txn.open_table(SHARE_TABLE)?;
            let mut bits = txn.open_table(BIT_SHARES_TABLE)?;
            let mut meta = txn.open_table(META_TABLE)?;
            // b gets a's (validly tagged) share record: bound to a's id, so rejected.
            let a_share = shares.get(a.0)?.ok_or("a has a share")?.value().to_vec();
            shares.insert(b.0, a_share.as_slice())?;
            // c's share table row gets c's bit-shares record: bound to the other table.
            let c_bits = bits.get(c.0)?.ok_or("c has bit shares")?.value().to_vec();
            shares.insert(c.0, c_bits.as_slice())?;
            // d's bit shares are replaced by the plain value, with no version and no tag.
            bits.insert(d.0, fixture.records[3].bit_shares.as_slice())?;
            // e's metadata row is deleted.
            meta.remove(e.0)?;
        }
        txn.commit()?;
    }

    let store = ShareStore::open(&path, key())?;
    assert_corrupt(store.get_image(b), b, "stored share")?;
    assert_corrupt(store.get_share(b), b, "stored share")?;
    assert_corrupt(store.get_image(c), c, "stored share")?;
    let d_bits = store.get_bit_shares(d);
    assert!(
        matches!(
            d_bits,
            Err(StoreError::Corrupt { id, what: "stored bit shares" }
                | StoreError::UnknownRecordVersion { id, what: "stored bit shares", .. })
                if id == d
        ),
        "{d_bits:?}"
    );
    match store.get_image(e) {
        Err(StoreError::Incomplete { id, missing }) if id == e => {
            assert_eq!(missing, "stored metadata");
        }
        other => return Err(format!("expected Incomplete for {e}, got {other:?}").into()),
    }
    assert_eq!(store.get_meta(e)?, None);
    assert_eq!(
        store.get_share(e)?.as_ref(),
        Some(&fixture.records[4].share)
    );
    assert_others_intact(&store, &fixture, &[b, c, d, e])?;

    // put_image never fills in a half-present image; replace_image repairs it.
    assert!(matches!(
        store.put_image(e, &fixture.records[4]),
        Err(StoreError::AlreadyExists(id)) if id == e
    ));
    store.replace_image(e, &fixture.records[4])?;
    assert_eq!(store.get_image(e)?.as_ref(), Some(&fixture.records[4]));
    Ok(())
}

#[test]
fn unknown_record_version_is_reported() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("store.redb");
    let fixture = build(&path)?;
    let id = fixture.ids[0];
    {
        let db = redb::Database::create(&path)?;
        let txn = db.begin_write()?;
        {
            let mut meta = txn.open_table(META_TABLE)?;
            let mut record = meta
                .get(id.0)?
                .ok_or("image has metadata")?
                .value()
                .to_vec();
            record[0] = 2;
            meta.insert(id.0, record.as_slice())?;
        }
        txn.commit()?;
    }
    let store = ShareStore::open(&path, key())?;
    let result = store.get_meta(id);
    assert!(
        matches!(
            result,
            Err(StoreError::UnknownRecordVersion { id: got, what: "stored metadata", version: 2 })
                if got == id
        ),
        "{result:?}"
    );
    assert_others_intact(&store, &fixture, &[id])?;
    Ok(())
}
