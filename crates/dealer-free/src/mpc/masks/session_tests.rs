use super::*;
use phr_sis::fp61::{Fp61, lagrange_at_zero};
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

struct Servers {
    keys: BTreeMap<NodeId, NodeKeys>,
    roster: BTreeMap<NodeId, NodePublicKeys>,
}

fn servers(m: u8, rng: &mut ChaCha20Rng) -> Servers {
    let keys: BTreeMap<NodeId, NodeKeys> = NodeId::first(m)
        .map(|id| (id, NodeKeys::generate(id, rng)))
        .collect();
    let roster = keys.iter().map(|(id, k)| (*id, k.public())).collect();
    Servers { keys, roster }
}

fn order(m: u8, count: u32) -> MaskOrder {
    MaskOrder {
        session: [4; 32],
        servers: NodeId::first(m).collect(),
        count,
        kind: MaskKind::ZeroSum,
        ids: Vec::new(),
    }
}

/// The three rounds among every server, relayed faithfully.
fn run(s: &Servers, order: &MaskOrder, t: u8, rng: &mut ChaCha20Rng) -> BTreeMap<NodeId, Judged> {
    let mut dealt = BTreeMap::new();
    let mut commitments = Vec::new();
    let mut sealed = Vec::new();
    for (id, k) in &s.keys {
        let (d, c, deals) = deal(order, t, k, &s.roster, rng).unwrap();
        dealt.insert(*id, d);
        commitments.push(c);
        sealed.extend(deals);
    }
    let mut checked = BTreeMap::new();
    let mut checks = Vec::new();
    for (id, d) in dealt {
        let mine: Vec<SealedMaskDeal> = sealed
            .iter()
            .filter(|x| x.recipient == id)
            .cloned()
            .collect();
        let (c, out) = d
            .check(&commitments, &mine, &s.keys[&id], &s.roster, rng)
            .unwrap();
        checked.insert(id, c);
        checks.extend(out);
    }
    checked
        .into_iter()
        .map(|(id, c)| (id, c.judge(&checks, &s.roster, rng).unwrap()))
        .collect()
}

#[test]
fn a_relayed_dealing_gives_every_server_its_points_of_zero_sharings() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    for (t, m) in [(2u8, 3u8), (3, 5), (3, 7)] {
        let s = servers(m, &mut rng);
        let o = order(m, 6);
        let mut judged = run(&s, &o, t, &mut rng);
        let ids: Vec<NodeId> = judged.keys().copied().collect();
        for j in judged.values() {
            assert_eq!(j.used, ids, "every dealer is used");
        }
        let l = lagrange_at_zero(&ids).unwrap();
        for _ in 0..6 {
            let z: Vec<Fp61> = judged
                .values_mut()
                .map(|j| j.pool.take(1).unwrap()[0])
                .collect();
            assert_eq!(
                l.iter().zip(&z).map(|(l, z)| *l * *z).sum::<Fp61>(),
                Fp61::ZERO
            );
        }
    }
}

#[test]
fn messages_round_trip() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let s = servers(3, &mut rng);
    let o = order(3, 4);
    assert_eq!(MaskOrder::from_bytes(&o.to_bytes()), Ok(o.clone()));
    assert_eq!(o.to_bytes().len(), MaskOrder::encoded_len(3));
    let k = &s.keys[&NodeId::first(1).last().unwrap()];
    let (_, c, deals) = deal(&o, 2, k, &s.roster, &mut rng).unwrap();
    let bytes = c.to_bytes();
    assert_eq!(bytes.len(), SignedMaskCommitment::encoded_len(3));
    assert_eq!(SignedMaskCommitment::from_bytes(&bytes), Ok(c));
    for d in deals {
        let bytes = d.to_bytes();
        assert_eq!(bytes.len(), SealedMaskDeal::encoded_len(4));
        assert_eq!(SealedMaskDeal::from_bytes(&bytes), Ok(d));
        for cut in 0..bytes.len() {
            assert!(SealedMaskDeal::from_bytes(&bytes[..cut]).is_err());
        }
    }
}

#[test]
fn orders_out_of_bounds_are_refused() {
    let me = NodeId::first(1).last().unwrap();
    assert!(order(5, 10).validate(me, 3, 5, 100).is_ok());
    assert!(
        order(4, 10).validate(me, 3, 5, 100).is_err(),
        "too few servers"
    );
    assert!(order(5, 0).validate(me, 3, 5, 100).is_err(), "no masks");
    assert!(
        order(5, 101).validate(me, 3, 5, 100).is_err(),
        "too many masks"
    );
    assert!(
        order(6, 10).validate(me, 3, 5, 100).is_err(),
        "a server beyond n"
    );
    let stranger = NodeId::first(7).last().unwrap();
    assert!(
        order(5, 10).validate(stranger, 3, 7, 100).is_err(),
        "not a server"
    );
}

#[test]
fn forged_changed_and_excess_messages_are_refused_naming_the_node() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let s = servers(3, &mut rng);
    let o = order(3, 4);
    let ids: Vec<NodeId> = s.keys.keys().copied().collect();
    let mut dealt = Vec::new();
    let mut commitments = Vec::new();
    let mut sealed = Vec::new();
    for id in &ids {
        let (d, c, deals) = deal(&o, 2, &s.keys[id], &s.roster, &mut rng).unwrap();
        dealt.push(d);
        commitments.push(c);
        sealed.extend(deals);
    }
    let me = ids[0];
    let mine: Vec<SealedMaskDeal> = sealed
        .iter()
        .filter(|x| x.recipient == me)
        .cloned()
        .collect();
    // Dealer 2's commitment signed by dealer 3.
    let mut forged = commitments.clone();
    forged[1].signature = forged[2].signature;
    let e = dealt[0]
        .clone()
        .check(&forged, &mine, &s.keys[&me], &s.roster, &mut rng)
        .unwrap_err();
    assert_eq!(e.culprits(), vec![ids[1]], "{e}");
    // This server's own commitment replaced by another of its own signature: refused.
    let (_, other, _) = deal(&o, 2, &s.keys[&me], &s.roster, &mut rng).unwrap();
    let mut changed = commitments.clone();
    changed[0] = other;
    assert!(
        dealt[0]
            .clone()
            .check(&changed, &mine, &s.keys[&me], &s.roster, &mut rng)
            .is_err()
    );
    // More commitments than servers: refused before any signature is checked.
    let mut many = commitments.clone();
    many.push(commitments[0].clone());
    many.push(commitments[0].clone());
    assert!(matches!(
        dealt[0]
            .clone()
            .check(&many, &mine, &s.keys[&me], &s.roster, &mut rng),
        Err(SearchError::TooMany { .. })
    ));
    // A deal sealed for another server.
    let theirs: Vec<SealedMaskDeal> = sealed
        .iter()
        .filter(|x| x.recipient != me)
        .take(1)
        .cloned()
        .collect();
    assert!(
        dealt[0]
            .clone()
            .check(&commitments, &theirs, &s.keys[&me], &s.roster, &mut rng)
            .is_err()
    );
    // A forged check: refused naming its checker.
    let (checked, mut checks) = dealt[0]
        .clone()
        .check(&commitments, &mine, &s.keys[&me], &s.roster, &mut rng)
        .unwrap();
    checks[0].check.values[0] += Fp61::ONE;
    let e = checked.judge(&checks, &s.roster, &mut rng).unwrap_err();
    assert_eq!(e.culprits(), vec![me], "{e}");
}
