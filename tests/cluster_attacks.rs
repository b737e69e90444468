//! Attacks on the DKG's secrecy over real node processes. The test is the attacker: it is the
//! coordinator that relays every DKG message between four honest node processes (raw gRPC
//! `DkgRound` calls with the cluster's admin certificate), and it plays a fifth, corrupt node
//! in process. As the relay it forges deals "from `i` to `j`" (the dealer's real commitment,
//! a garbage share) for `t − 1` honest recipients of every honest dealer and delivers them
//! before the real ones — or drops the real ones. It then collects every point of the
//! dealers' polynomials it can read (its own deals, and any share a complaint opens), makes
//! its best guess `x` of the group secret and checks `x·G` against the group key the honest
//! nodes report: the test asserts that the check fails while the honest nodes agree on a key.
//! Every process is bounded by a timeout.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use curve25519_dalek::ristretto::CompressedRistretto;
use curve25519_dalek::scalar::Scalar;
use dealer_free::dkg::deal::{Deal, ENCRYPTED_SHARE_LEN};
use dealer_free::dkg::{DkgMessage, DkgParams, DkgSession, Misbehaviour};
use dealer_free::identity::{NodeKeys, NodePublicKeys};
use dealer_free::vss::{generator_g, interpolate_at_zero};
use dealer_free_node::proto;
use dealer_free_node::proto::node_client::NodeClient;
use phr_sis::{NodeId, Threshold};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;
use tonic::transport::Channel;

#[path = "support/pinned.rs"]
mod pinned;
use pinned::Identity;

#[path = "support/process.rs"]
mod process;

type TestResult<T = ()> = Result<T, Box<dyn std::error::Error>>;

const EXE: &str = env!("CARGO_BIN_EXE_dealer-free-sis");
const T: u8 = 3;
const N: u8 = 5;
/// The corrupt node the test plays.
const ATTACKER: u8 = N;

/// Four honest node processes of a (3, 5) cluster; killed when the test ends.
struct Honest {
    _temp: tempfile::TempDir,
    dir: PathBuf,
    children: Vec<Child>,
}

impl Drop for Honest {
    fn drop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn run(args: &[&str], limit: Duration) -> TestResult<Output> {
    process::run_bounded(EXE, args, limit)
}

impl Honest {
    fn start() -> TestResult<Honest> {
        let temp = tempfile::tempdir()?;
        let dir = temp.path().join("cluster");
        let d = dir.display().to_string();
        let out = run(
            &[
                "cluster",
                "init",
                "--dir",
                &d,
                "--nodes",
                "5",
                "--threshold",
                "3",
            ],
            Duration::from_secs(60),
        )?;
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let mut honest = Honest {
            _temp: temp,
            dir,
            children: Vec::new(),
        };
        for id in 1..ATTACKER {
            let config = honest.dir.join(format!("node-{id}/node.toml"));
            let log = std::fs::File::create(honest.dir.join(format!("node-{id}.log")))?;
            let child = Command::new(EXE)
                .args(["node", "run", "--config"])
                .arg(&config)
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()?;
            honest.children.push(child);
        }
        Ok(honest)
    }

    fn address(&self, id: u8) -> TestResult<String> {
        let profile = dealer_free_node::config::ClientProfile::load(&self.dir.join("client.toml"))?;
        Ok(profile
            .raw
            .nodes
            .iter()
            .find(|n| n.id == id)
            .ok_or("no such node")?
            .address
            .clone())
    }

    fn client(&self, id: u8) -> TestResult<NodeClient<Channel>> {
        let read = |p: &str| std::fs::read(self.dir.join(p));
        let identity = Identity::from_pem(read("client.pem")?, read("client.key")?);
        pinned::pinned(&self.dir, id, &self.address(id)?, Some(&identity))
    }

    /// The corrupt node's own identity keys, from its folder (the attacker runs that node).
    fn corrupt_keys(&self) -> TestResult<NodeKeys> {
        let node = self.dir.join(format!("node-{ATTACKER}"));
        let key =
            dealer_free_node::secrets::AtRestKey::load(Some(&node.join("at-rest.key")), None)?;
        let secrets = dealer_free_node::secrets::NodeSecrets::open(
            &node.join("data"),
            NodeId::new(ATTACKER)?,
            &key,
        )?
        .ok_or("the corrupt node has no secrets")?;
        Ok(secrets.keys)
    }

    /// The honest nodes' identities, once they all answer (at most 30 s).
    async fn identities(&self) -> TestResult<BTreeMap<NodeId, NodePublicKeys>> {
        let start = Instant::now();
        let mut out = BTreeMap::new();
        for id in 1..ATTACKER {
            loop {
                let reply = self
                    .client(id)?
                    .identity(proto::IdentityRequest { meta: meta() })
                    .await;
                match reply {
                    Ok(r) => {
                        let keys: [u8; 64] = r.into_inner().public_keys.as_slice().try_into()?;
                        out.insert(NodeId::new(id)?, NodePublicKeys::from_bytes(&keys)?);
                        break;
                    }
                    Err(_) if start.elapsed() < Duration::from_secs(30) => {
                        tokio::time::sleep(Duration::from_millis(100)).await;
                    }
                    Err(e) => return Err(format!("node {id} does not answer: {e}").into()),
                }
            }
        }
        Ok(out)
    }
}

fn meta() -> Option<proto::RequestMeta> {
    Some(proto::RequestMeta {
        request_id: (0..16).map(|_| rand::random::<u8>()).collect(),
        unix_ms: dealer_free_node::replay::unix_ms(),
    })
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Tamper {
    Forge,
    Drop,
}

/// Points `(x, f_i(x))` of each dealer's polynomial the attacker saw.
type Points = BTreeMap<NodeId, BTreeMap<NodeId, Scalar>>;

/// The `t − 1` honest recipients whose deals from `dealer` the relay tampers with.
fn victims(dealer: u8) -> Vec<u8> {
    (1..ATTACKER)
        .cycle()
        .skip_while(|id| *id != dealer)
        .skip(1)
        .take(usize::from(T - 1))
        .collect()
}

async fn attack(tamper: Tamper) -> TestResult {
    let honest = Honest::start()?;
    let mut participants = honest.identities().await?;
    let mut rng = ChaCha20Rng::seed_from_u64(99);
    let me = NodeId::new(ATTACKER)?;
    let my_keys = honest.corrupt_keys()?;
    participants.insert(me, my_keys.public());
    let threshold = Threshold::new(T, N)?;
    let label = format!("attack-{tamper:?}").into_bytes();
    let params = DkgParams::new(&label, threshold, participants.clone())?;
    let session_id = params.session();
    // The corrupt node deals nothing (so it is disqualified, and the group secret is the sum
    // of the honest dealers' secrets — what it tries to learn); it only receives.
    let (mut mine, _) =
        DkgSession::start_with(params, my_keys.clone(), Misbehaviour::Silent, &mut rng)?;
    let proto_participants: Vec<proto::Participant> = participants
        .iter()
        .map(|(id, k)| proto::Participant {
            node_id: u32::from(id.get()),
            public_keys: k.to_bytes().to_vec(),
        })
        .collect();
    let mut seen: Points = BTreeMap::new();
    let mut my_deals: BTreeMap<NodeId, Deal> = BTreeMap::new();
    let mut inboxes: BTreeMap<u8, Vec<proto::DkgEnvelope>> = BTreeMap::new();
    let mut keys = Vec::new();
    let mut tampered = 0usize;
    for step in 0..=4u32 {
        let mut outgoing: Vec<proto::DkgEnvelope> = Vec::new();
        for id in 1..ATTACKER {
            let req = proto::DkgRoundRequest {
                meta: meta(),
                label: label.clone(),
                t: u32::from(T),
                participants: proto_participants.clone(),
                step,
                inbox: inboxes.remove(&id).unwrap_or_default(),
                commit_transcript: Vec::new(),
            };
            let reply = honest
                .client(id)?
                .dkg_round(req)
                .await
                .map_err(|e| format!("node {id} at step {step}: {e}"))?
                .into_inner();
            outgoing.extend(reply.outbox);
            if let Some(result) = reply.result {
                keys.push(result.group_public_key);
            }
        }
        // The corrupt node's own session (it sends nothing).
        if step > 0 {
            let next = mine.end_round(&mut rng);
            if let Ok((s, _)) = next {
                mine = s;
            } else {
                break;
            }
        }
        // Forged deals first, then everything else (less what the relay drops).
        let mut delivery: Vec<proto::DkgEnvelope> = Vec::new();
        if step == 0 && tamper == Tamper::Forge {
            for e in &outgoing {
                let Ok(DkgMessage::Deal(deal)) = DkgMessage::from_bytes(&e.message, threshold)
                else {
                    continue;
                };
                if deal.recipient != me {
                    continue;
                }
                for v in victims(deal.dealer.get()) {
                    let mut forged = deal.clone();
                    forged.recipient = NodeId::new(v)?;
                    forged.encrypted_share = [7u8; ENCRYPTED_SHARE_LEN];
                    tampered += 1;
                    delivery.push(proto::DkgEnvelope {
                        from: e.from,
                        to: u32::from(v),
                        message: forged.to_bytes(),
                    });
                }
            }
        }
        for e in outgoing {
            let dropped = step == 0
                && tamper == Tamper::Drop
                && u8::try_from(e.to)
                    .is_ok_and(|to| victims(u8::try_from(e.from).unwrap_or(0)).contains(&to));
            if dropped {
                tampered += 1;
            } else {
                delivery.push(e);
            }
        }
        for e in delivery {
            let from = NodeId::new(u8::try_from(e.from)?)?;
            // The relay reads everything it relays.
            if let Ok(m) = DkgMessage::from_bytes(&e.message, threshold) {
                collect(&mut seen, &mut my_deals, &my_keys, &session_id, e.to, &m);
            }
            for id in 1..=ATTACKER {
                let to_it = e.to == u32::from(id) || (e.to == 0 && e.from != u32::from(id));
                if !to_it {
                    continue;
                }
                if id == ATTACKER {
                    let _ = mine.handle_message(from, &e.message);
                } else {
                    inboxes.entry(id).or_default().push(e.clone());
                }
            }
        }
    }
    assert_eq!(
        keys.len(),
        usize::from(ATTACKER - 1),
        "every honest node finished"
    );
    assert!(
        keys.windows(2).all(|w| w[0] == w[1]),
        "the honest nodes agree"
    );
    let key = CompressedRistretto::from_slice(&keys[0])?
        .decompress()
        .ok_or("not a point")?;
    let guess: Scalar = seen
        .values()
        .filter(|pts| pts.len() >= usize::from(T))
        .map(|pts| {
            let v: Vec<(NodeId, Scalar)> = pts.iter().map(|(k, v)| (*k, *v)).collect();
            interpolate_at_zero(&v[..usize::from(T)]).unwrap_or(Scalar::ZERO)
        })
        .sum();
    let full: usize = seen.values().filter(|p| p.len() >= usize::from(T)).count();
    // The attacker did receive a deal from every honest dealer (the relay works as intended).
    assert_eq!(
        my_deals.len(),
        usize::from(ATTACKER - 1),
        "deals to the corrupt node"
    );
    assert_eq!(
        tampered,
        usize::from((ATTACKER - 1) * (T - 1)),
        "deals tampered with"
    );
    assert_ne!(
        guess * generator_g(),
        key,
        "{tamper:?}: the attacker recovered the group secret ({full} polynomials known in full)"
    );
    Ok(())
}

/// Records every point of a dealer's polynomial readable from a relayed message: deals to
/// the corrupt node, and any share a complaint's evidence opens.
fn collect(
    seen: &mut Points,
    my_deals: &mut BTreeMap<NodeId, Deal>,
    me: &NodeKeys,
    session: &dealer_free::dkg::SessionId,
    to: u32,
    m: &DkgMessage,
) {
    if let DkgMessage::Deal(d) = m
        && to == u32::from(me.id().get())
        && let Some(share) = d.open(me, session)
    {
        seen.entry(d.dealer)
            .or_default()
            .insert(me.id(), share.value());
        my_deals.insert(d.dealer, d.clone());
    }
    if let DkgMessage::Complaint(c) = m {
        for complaint in &c.complaints {
            if let (Some(e), Some(deal)) = (&complaint.evidence, my_deals.get(&complaint.accused))
                && let Some(share) = deal.open_evidence(e, c.sender, session)
            {
                seen.entry(complaint.accused)
                    .or_default()
                    .insert(c.sender, share.value());
            }
        }
    }
}

#[tokio::test]
async fn a_relay_that_forges_deals_learns_nothing_of_the_key() -> TestResult {
    attack(Tamper::Forge).await
}

#[tokio::test]
async fn a_relay_that_drops_deals_learns_nothing_of_the_key() -> TestResult {
    attack(Tamper::Drop).await
}

/// A coordinator that names a node a dealer but not a receiver would have it erase its key
/// share at the commit on its word alone (and so wipe the key node by node): the node
/// refuses at step 0, before anything is dealt.
#[tokio::test]
async fn a_node_never_deals_away_its_share_without_receiving() -> TestResult {
    let honest = Honest::start()?;
    let participants = honest.identities().await?;
    let entry = |id: u8| -> TestResult<proto::Participant> {
        let keys = participants.get(&NodeId::new(id)?).ok_or("no such node")?;
        Ok(proto::Participant {
            node_id: u32::from(id),
            public_keys: keys.to_bytes().to_vec(),
        })
    };
    let point = |k: u64| {
        (Scalar::from(k) * generator_g())
            .compress()
            .to_bytes()
            .to_vec()
    };
    let request = proto::ReshareRoundRequest {
        meta: meta(),
        label: b"retire node 1".to_vec(),
        old_t: 2,
        group_public_key: point(7),
        old_verification_shares: (1..ATTACKER)
            .map(|id| proto::VerificationShare {
                node_id: u32::from(id),
                point: point(u64::from(id)),
            })
            .collect(),
        dealers: vec![entry(1)?, entry(2)?],
        new_t: u32::from(T),
        receivers: vec![entry(2)?, entry(3)?, entry(4)?],
        step: 0,
        inbox: Vec::new(),
        commit_transcript: Vec::new(),
    };
    let refused = honest
        .client(1)?
        .reshare_round(request)
        .await
        .err()
        .ok_or("node 1 accepted to deal without receiving")?;
    assert_eq!(refused.code(), tonic::Code::InvalidArgument, "{refused}");
    assert!(
        refused.message().contains("never gives up its key share"),
        "{refused}"
    );
    let audit = std::fs::read_to_string(honest.dir.join("node-1/data/audit.log"))?;
    assert!(!audit.contains("reshare-start"), "{audit}");
    Ok(())
}
