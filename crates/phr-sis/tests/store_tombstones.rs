//! Deleting images for good: every part removed and a tombstone left in one transaction; a
//! deleted id is refused by every way of storing it, survives a reopen, and is listed.

use std::error::Error;

use phr_sis::ImageId;
use phr_sis::store::{Charge, Deleted, Deleter, ImageRecord, MacKey, ShareStore, StoreError};

type TestResult = Result<(), Box<dyn Error>>;

fn key() -> MacKey {
    MacKey::from_bytes(*b"node-3 integrity key, 32 bytes!!")
}

fn record(seed: u8, len: usize) -> ImageRecord {
    ImageRecord {
        share: vec![seed; len],
        bit_shares: vec![seed.wrapping_add(1); 512],
        meta: vec![seed.wrapping_add(2); 64],
    }
}

#[test]
fn a_deleted_image_is_gone_for_good_and_listed() -> TestResult {
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("shares.redb");
    let store = ShareStore::open(&path, key())?;
    let charge = Charge {
        account: "owner",
        limit: u64::MAX,
    };
    let (one, two) = (record(1, 1000), record(2, 1000));
    store.put_images_charged(&[(ImageId(1), &one), (ImageId(2), &two)], charge, &[])?;
    let before = store.usage("owner")?;
    let outcome = store.delete_images(&[ImageId(1), ImageId(9), ImageId(1)], Deleter::Admin)?;
    assert_eq!(
        outcome,
        vec![
            (ImageId(1), Deleted::Removed),
            (ImageId(9), Deleted::Absent),
            (ImageId(1), Deleted::Already),
        ]
    );
    assert_eq!(store.get_image(ImageId(1))?, None);
    assert_eq!(store.get_image(ImageId(2))?, Some(two.clone()));
    assert!(
        store.usage("owner")? < before,
        "the bytes removed are given back"
    );
    assert!(store.is_deleted(ImageId(1))? && store.is_deleted(ImageId(9))?);
    assert!(!store.is_deleted(ImageId(2))?);
    assert_eq!(
        store.deleted_among([ImageId(1), ImageId(2), ImageId(9)])?,
        std::collections::BTreeSet::from([ImageId(1), ImageId(9)])
    );

    // Every way of storing refuses a deleted id, and changes nothing.
    for attempt in [
        store.put_image(ImageId(1), &one),
        store.put_images(&[(ImageId(3), &one), (ImageId(9), &two)]),
        store
            .put_images_charged(&[(ImageId(1), &one)], charge, &[])
            .map(|_| ()),
    ] {
        assert!(
            matches!(attempt, Err(StoreError::Deleted(_))),
            "{attempt:?}"
        );
    }
    assert_eq!(store.get_image(ImageId(3))?, None, "all or nothing");
    assert_eq!(store.list(None, 10)?.ids, vec![ImageId(2)]);
    let deleted = store.list_deleted(None, 1)?;
    assert_eq!(deleted.ids, vec![ImageId(1)]);
    assert_eq!(store.list_deleted(deleted.next, 10)?.ids, vec![ImageId(9)]);

    // Tombstones are durable.
    drop(store);
    let store = ShareStore::open(&path, key())?;
    assert!(store.is_deleted(ImageId(1))?);
    assert!(matches!(
        store.put_image(ImageId(1), &one),
        Err(StoreError::Deleted(ImageId(1)))
    ));
    // A damaged record removed for repair is not a deletion: it can be stored again.
    assert!(store.delete_image(ImageId(2))?);
    store.put_image(ImageId(2), &two)?;
    Ok(())
}

#[test]
fn an_account_deletes_only_what_it_stored_and_the_payer_gets_the_bytes_back() -> TestResult {
    let dir = tempfile::tempdir()?;
    let store = ShareStore::open(dir.path().join("shares.redb"), key())?;
    let alice = Charge {
        account: "alice",
        limit: 1 << 20,
    };
    let (a, b, c) = (record(1, 1000), record(2, 1000), record(3, 1000));
    store.put_images_charged(&[(ImageId(1), &a)], alice, &[])?;
    // An operator stores a record for bob (a rebuild): charged to bob, not to the operator.
    let admin = Charge {
        account: "admin",
        limit: u64::MAX,
    };
    store.put_images_owned(
        &[(ImageId(2), &b), (ImageId(3), &c)],
        &["bob", "alice"],
        admin,
        &[],
    )?;
    assert_eq!(store.owner_of(ImageId(2))?.as_deref(), Some("bob"));
    assert_eq!(store.usage("admin")?, 0);
    let (alice_used, bob_used) = (store.usage("alice")?, store.usage("bob")?);
    assert!(alice_used > 2000 && bob_used > 1000);

    // alice may not delete bob's image: it is left as it is, named as not hers.
    let refused = store.delete_images(&[ImageId(2)], Deleter::Account("alice"))?;
    assert_eq!(refused, vec![(ImageId(2), Deleted::NotYours)]);
    assert!(store.get_image(ImageId(2))?.is_some());
    assert!(!store.is_deleted(ImageId(2))?);
    // Her own, and an id never stored (no tombstone for an account's absent id).
    let done = store.delete_images(&[ImageId(1), ImageId(7)], Deleter::Account("alice"))?;
    assert_eq!(
        done,
        vec![
            (ImageId(1), Deleted::Removed),
            (ImageId(7), Deleted::Absent)
        ]
    );
    assert!(!store.is_deleted(ImageId(7))?);
    assert!(store.usage("alice")? < alice_used);
    // bob's image deleted by an operator: bob gets its bytes back.
    store.delete_images(&[ImageId(2)], Deleter::Admin)?;
    assert_eq!(store.usage("bob")?, 0);
    // Listing by owner.
    assert_eq!(store.list_owned("alice", None, 10)?.ids, vec![ImageId(3)]);
    assert!(store.list_owned("bob", None, 10)?.ids.is_empty());
    // A damaged record removed for repair gives its owner the bytes back too.
    let before = store.usage("alice")?;
    assert!(store.delete_image(ImageId(3))?);
    assert!(store.usage("alice")? < before);
    Ok(())
}
