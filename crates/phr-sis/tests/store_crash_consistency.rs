//! Crash consistency of the share store: a child process stores (and now and then deletes)
//! share-sized images and is killed with SIGKILL at random points, over and over, on the same
//! database file. After each kill the parent reopens the file and checks that
//!
//! - every image whose `put_image` had returned (the child prints `stored <id>` after the call
//!   returns) is there and verifies, and every image whose `delete_image` had returned is gone;
//! - nothing is half-written: every image in the store has all three parts, each verifying and
//!   equal to what was written; an image the child was writing when killed is either entirely
//!   there or entirely absent;
//! - the store keeps working: the parent stores, reads and deletes an image of its own.
//!
//! A second test kills children while they create a new store file.
//!
//! The child is this test executable run again with `CHILD_DB_ENV` set, running only the
//! ignored test `crash_writer_child`.

use std::collections::BTreeSet;
use std::error::Error;
use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use phr_sis::ImageId;
use phr_sis::store::{ImageRecord, MacKey, ShareStore};
use rand::{Rng, RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;

type TestResult = Result<(), Box<dyn Error>>;

/// Set (to the database path) in the child's environment.
const CHILD_DB_ENV: &str = "PHR_SIS_STORE_CRASH_CHILD_DB";
/// The first image id the child writes.
const CHILD_FIRST_ID_ENV: &str = "PHR_SIS_STORE_CRASH_CHILD_FIRST_ID";

/// Starts each line of the child's report (libtest writes to the same stdout, and may start a
/// line that the child's first report ends).
const LINE_TAG: &str = "@@ ";

/// Kill points (one per child process).
const ROUNDS: u64 = 32;
/// Operations a child would do if never killed (far more than fit before the kill).
const OPS_PER_CHILD: u64 = 5_000;
/// Ids the parent stores itself, to check that the store keeps working.
const PARENT_IDS: u64 = 0xffff_0000_0000_0000;

fn node_key() -> MacKey {
    MacKey::from_bytes(*b"crash-test node key, 32 bytes!!!")
}

/// What image `id` holds: sizes like real shares (10 KB to 300 KB, bit shares 1 to 8 KB),
/// contents derived from the id so that any process can check them.
fn expected_record(id: ImageId) -> ImageRecord {
    let mut rng = ChaCha8Rng::seed_from_u64(id.0 ^ 0x5eed_c0de);
    let mut share = vec![0; rng.random_range(10_000..=300_000)];
    let mut bit_shares = vec![0; rng.random_range(1_024..=8_192)];
    let mut meta = vec![0; rng.random_range(16..=256)];
    rng.fill_bytes(&mut share);
    rng.fill_bytes(&mut bit_shares);
    rng.fill_bytes(&mut meta);
    ImageRecord {
        share,
        bit_shares,
        meta,
    }
}

/// One operation of a child.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Put(ImageId),
    Delete(ImageId),
}

/// The child's operations, in order: puts of `first, first + 1, ...`, and after every fourth
/// put a delete of the image stored two puts earlier.
fn child_ops(first: u64) -> impl Iterator<Item = Op> {
    (0..OPS_PER_CHILD).flat_map(move |i| {
        let put = Op::Put(ImageId(first + i));
        let delete = (i % 4 == 3).then(|| Op::Delete(ImageId(first + i - 2)));
        std::iter::once(put).chain(delete)
    })
}

fn op_line(op: Op) -> String {
    match op {
        Op::Put(id) => format!("stored {id}"),
        Op::Delete(id) => format!("deleted {id}"),
    }
}

/// The writer run in the child process; does nothing in a normal test run.
#[test]
#[ignore = "child process of store_survives_sigkill_at_random_points"]
fn crash_writer_child() -> TestResult {
    let Some(db) = std::env::var_os(CHILD_DB_ENV) else {
        return Ok(());
    };
    let first: u64 = std::env::var(CHILD_FIRST_ID_ENV)?.parse()?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{LINE_TAG}starting")?;
    out.flush()?;
    let store = ShareStore::open(db, node_key())?;
    writeln!(out, "{LINE_TAG}opened")?;
    out.flush()?;
    for op in child_ops(first) {
        match op {
            Op::Put(id) => store.put_image(id, &expected_record(id))?,
            Op::Delete(id) => {
                if !store.delete_image(id)? {
                    return Err(format!("{id} was not there to delete").into());
                }
            }
        }
        // Only after the call has returned.
        writeln!(out, "{LINE_TAG}{}", op_line(op))?;
        out.flush()?;
    }
    Ok(())
}

/// A running child writer: the process, its stdout lines, and the thread collecting stderr.
type ChildWriter = (Child, mpsc::Receiver<String>, thread::JoinHandle<String>);

/// Spawns the child writer; its stdout lines arrive on the returned channel.
fn spawn_child(db: &Path, first: u64) -> Result<ChildWriter, Box<dyn Error>> {
    let mut child = Command::new(std::env::current_exe()?)
        .args([
            "crash_writer_child",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB_ENV, db)
        .env(CHILD_FIRST_ID_ENV, first.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let stdout = child.stdout.take().ok_or("child has no stdout")?;
    let mut stderr = child.stderr.take().ok_or("child has no stderr")?;
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            let Some(at) = line.find(LINE_TAG) else {
                continue;
            };
            if tx.send(line[at + LINE_TAG.len()..].to_owned()).is_err() {
                break;
            }
        }
    });
    let err_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    Ok((child, rx, err_reader))
}

/// Runs a child writer on `db`, waits for its report line `after`, sleeps `delay` and kills
/// it. Returns whether it had opened the store, and the operations it acknowledged.
fn run_and_kill(
    db: &Path,
    first: u64,
    after: &str,
    delay: Duration,
) -> Result<(bool, Vec<String>), Box<dyn Error>> {
    let (mut child, lines, err_reader) = spawn_child(db, first)?;
    let mut received = Vec::new();
    loop {
        match lines.recv_timeout(Duration::from_secs(20)) {
            Ok(line) => {
                let done = line == after;
                received.push(line);
                if done {
                    break;
                }
            }
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                let stderr = err_reader.join().unwrap_or_default();
                return Err(format!("child did not report {after:?} ({e}): {stderr}").into());
            }
        }
    }
    thread::sleep(delay);
    if let Some(status) = child.try_wait()? {
        let stderr = err_reader.join().unwrap_or_default();
        return Err(format!("child exited by itself ({status}): {stderr}").into());
    }
    child.kill()?;
    child.wait()?;
    // The reader thread ends at end of file, so this collects every line written.
    received.extend(lines.iter());
    let _ = err_reader.join();

    let mut received = received.into_iter();
    if received.next().as_deref() != Some("starting") {
        return Err("the child's first report is not \"starting\"".into());
    }
    let opened = received.next();
    match opened.as_deref() {
        None => Ok((false, Vec::new())),
        Some("opened") => Ok((true, received.collect())),
        Some(other) => Err(format!("unexpected report {other:?} before \"opened\"").into()),
    }
}

/// Checks the image against what was written: `Ok(true)` if it is there and intact,
/// `Ok(false)` if entirely absent, an error if partial, corrupt or different.
fn check_image(store: &ShareStore, id: ImageId) -> Result<bool, Box<dyn Error>> {
    let Some(record) = store.get_image(id)? else {
        // Absent: every part must be absent.
        if store.get_share(id)?.is_some()
            || store.get_bit_shares(id)?.is_some()
            || store.get_meta(id)?.is_some()
            || store.contains(id)?
        {
            return Err(format!("image {id} is partly there").into());
        }
        return Ok(false);
    };
    if record != expected_record(id) {
        return Err(format!("image {id} differs from what was written").into());
    }
    Ok(true)
}

/// Every id in the store, by paging.
fn all_ids(store: &ShareStore) -> Result<Vec<ImageId>, Box<dyn Error>> {
    let mut ids = Vec::new();
    let mut after = None;
    loop {
        let page = store.list(after, 100)?;
        ids.extend(page.ids);
        match page.next {
            Some(next) => after = Some(next),
            None => return Ok(ids),
        }
    }
}

#[test]
fn store_survives_sigkill_at_random_points() -> TestResult {
    let started = Instant::now();
    let dir = tempfile::tempdir()?;
    let db = dir.path().join("node.redb");
    let mut rng = ChaCha8Rng::seed_from_u64(0xc0a5_7e57);

    // Ids that must be there / must not be there, from acknowledged operations.
    let mut present: BTreeSet<ImageId> = BTreeSet::new();
    let mut absent: BTreeSet<ImageId> = BTreeSet::new();
    // Ids whose operation was in flight at a kill: either state is fine.
    let mut uncertain: BTreeSet<ImageId> = BTreeSet::new();
    let mut acked_total = 0usize;
    let mut in_flight_committed = 0usize;
    let mut kills_before_open = 0usize;

    for round in 0..ROUNDS {
        let first = (round + 1) << 32;
        // Every fourth round counts a short delay from the spawn (so the kill may hit start-up
        // or the recovery in `open`); the others 5 to 150 ms from the moment the store is open.
        let (after, delay) = if round % 4 == 0 {
            ("starting", Duration::from_millis(rng.random_range(1..=40)))
        } else {
            ("opened", Duration::from_millis(rng.random_range(5..=150)))
        };
        let (opened, acked) = run_and_kill(&db, first, after, delay)?;
        if !opened {
            kills_before_open += 1;
        }
        let mut ops = child_ops(first);
        for line in &acked {
            let op = ops.next().ok_or("more lines than operations")?;
            if *line != op_line(op) {
                return Err(format!("round {round}: line {line:?}, expected {op:?}").into());
            }
            match op {
                Op::Put(id) => {
                    present.insert(id);
                }
                Op::Delete(id) => {
                    present.remove(&id);
                    absent.insert(id);
                }
            }
        }
        acked_total += acked.len();
        let in_flight = if opened { ops.next() } else { None };

        let store = ShareStore::open(&db, node_key())?;
        match in_flight {
            Some(Op::Put(id)) => {
                uncertain.insert(id);
                if check_image(&store, id)? {
                    in_flight_committed += 1;
                    present.insert(id);
                } else {
                    absent.insert(id);
                }
            }
            Some(Op::Delete(id)) => {
                if check_image(&store, id)? {
                    uncertain.insert(id);
                } else {
                    in_flight_committed += 1;
                    present.remove(&id);
                    absent.insert(id);
                }
            }
            None => {}
        }
        // The ids the child would have written next were never started.
        for op in ops.take(2) {
            if let Op::Put(id) = op {
                absent.insert(id);
            }
        }

        for &id in &present {
            if !check_image(&store, id)? {
                return Err(format!("round {round}: acknowledged image {id} is missing").into());
            }
        }
        for &id in &absent {
            if check_image(&store, id)? {
                return Err(format!("round {round}: image {id} should be absent").into());
            }
        }
        // Whatever the store lists is complete and intact, and exactly the expected set.
        let listed = all_ids(&store)?;
        let listed_set: BTreeSet<ImageId> = listed.iter().copied().collect();
        if listed_set != present {
            return Err(format!(
                "round {round}: store lists {} images, expected {}",
                listed.len(),
                present.len()
            )
            .into());
        }
        if store.len()? != present.len() as u64 {
            return Err(format!("round {round}: len disagrees with the listing").into());
        }

        // The store keeps working: a put, a read and a delete of the parent's own.
        let own = ImageId(PARENT_IDS + round);
        store.put_image(own, &expected_record(own))?;
        if !check_image(&store, own)? {
            return Err(format!("round {round}: parent's own image unreadable").into());
        }
        if round % 2 == 0 {
            store.delete_image(own)?;
            absent.insert(own);
        } else {
            present.insert(own);
        }
    }

    // Once more from a fresh open, the whole store.
    let store = ShareStore::open(&db, node_key())?;
    for id in all_ids(&store)? {
        if !check_image(&store, id)? {
            return Err(format!("listed image {id} is not readable").into());
        }
    }
    let listed: BTreeSet<ImageId> = all_ids(&store)?.into_iter().collect();
    assert_eq!(listed, present);
    assert!(
        acked_total >= ROUNDS as usize,
        "children acknowledged only {acked_total} operations"
    );
    let file_mib = std::fs::metadata(&db)?.len() as f64 / (1024.0 * 1024.0);
    println!(
        "{ROUNDS} kill points ({kills_before_open} before the store was open), {acked_total} \
         acknowledged operations, {in_flight_committed} in-flight operations found committed, \
         {} of {} uncertain ids present, {} images stored, file {file_mib:.1} MiB, {:.1} s",
        uncertain.intersection(&present).count(),
        uncertain.len(),
        listed.len(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Kills the child while it creates a new store file: reopening must always work (redb alone
/// leaves a half-initialised file that it then rejects forever).
#[test]
fn store_creation_survives_sigkill() -> TestResult {
    const CREATION_ROUNDS: u64 = 12;
    let dir = tempfile::tempdir()?;
    let mut rng = ChaCha8Rng::seed_from_u64(0xc4ea_7e00);
    let mut opened_count = 0;
    let mut mid_creation = 0;
    for round in 0..CREATION_ROUNDS {
        let db = dir.path().join(format!("node-{round}.redb"));
        let delay = Duration::from_micros(rng.random_range(0..=30_000));
        let (opened, acked) = run_and_kill(&db, 1 << 32, "starting", delay)?;
        opened_count += usize::from(opened);
        // Killed while the new file was being initialised under its temporary name.
        let temp = dir.path().join(format!(".node-{round}.redb.creating"));
        mid_creation += usize::from(temp.exists());
        let store = ShareStore::open(&db, node_key())?;
        let mut expected = BTreeSet::new();
        for (line, op) in acked.iter().zip(child_ops(1 << 32)) {
            if *line != op_line(op) {
                return Err(format!("round {round}: line {line:?}, expected {op:?}").into());
            }
            match op {
                Op::Put(id) => expected.insert(id),
                Op::Delete(id) => expected.remove(&id),
            };
        }
        for id in all_ids(&store)? {
            if !check_image(&store, id)? {
                return Err(format!("round {round}: listed image {id} is missing").into());
            }
        }
        for &id in &expected {
            if !check_image(&store, id)? {
                return Err(format!("round {round}: acknowledged image {id} is missing").into());
            }
        }
        let own = ImageId(PARENT_IDS);
        store.put_image(own, &expected_record(own))?;
        if !check_image(&store, own)? {
            return Err(format!("round {round}: parent's own image unreadable").into());
        }
    }
    println!(
        "{CREATION_ROUNDS} kill points around creation: {mid_creation} left a half-created \
         temporary file, {opened_count} came after the open"
    );
    Ok(())
}
