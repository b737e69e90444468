use super::*;
use rand::SeedableRng;

fn setup(t: u8, n: u8) -> (MaskCommitment, Vec<MaskDeal>) {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(u64::from(n));
    let servers: Vec<NodeId> = NodeId::first(n).collect();
    deal_checked(
        [7; 32],
        MaskKind::ZeroSum,
        servers[0],
        &servers,
        t,
        4,
        &mut rng,
    )
    .unwrap()
}

#[test]
fn honest_deal_verifies_and_is_accepted() {
    let (c, deals) = setup(3, 6);
    let checks: Vec<MaskCheck> = deals.iter().map(|d| d.verify(&c).unwrap()).collect();
    let v = judge(&c, &checks, 3).unwrap();
    assert!(v.is_accepted());
    assert!(v.named().is_empty());
    let v = judge(&c, &checks[..5], 3).unwrap();
    assert_eq!(v.named(), vec![NodeId::new(6).unwrap()]);
    assert!(matches!(
        judge(&c, &checks[..4], 3),
        Err(MpcError::TooFewNodes { needed: 5, .. })
    ));
    let twice = [checks[0], checks[0], checks[1], checks[2], checks[3]];
    assert!(judge(&c, &twice, 3).is_err());
    assert_eq!(deals[0].masks().len(), 4);
    assert!(format!("{:?}", deals[0]).contains("<redacted>"));
}

#[test]
fn tampered_deal_fails_verification() {
    let (c, deals) = setup(2, 3);
    let mut bad = deals[1].clone();
    bad.values[0] += Fp61::ONE;
    assert!(bad.verify(&c).is_err());
    let mut other = deals[1].clone();
    other.recipient = deals[2].recipient;
    assert!(other.verify(&c).is_err());
}

#[test]
fn a_deal_failing_verification_is_named_missing_and_left_out_of_the_pool() {
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(9);
    let servers: Vec<NodeId> = NodeId::first(5).collect();
    let mut all = Vec::new();
    let mut verdicts = Vec::new();
    for dealer in &servers {
        let (c, mut deals) = deal_checked(
            [3; 32],
            MaskKind::ZeroSum,
            *dealer,
            &servers,
            2,
            3,
            &mut rng,
        )
        .unwrap();
        if dealer.get() == 1 {
            deals[4].values[1] += Fp61::ONE; // after committing: node 5's deal fails
        }
        let checks: Vec<MaskCheck> = deals.iter().filter_map(|d| d.verify(&c).ok()).collect();
        verdicts.push(judge(&c, &checks, 2).unwrap());
        all.push(deals);
    }
    assert_eq!(verdicts[0].named(), vec![servers[4]]);
    assert!(verdicts.iter().all(Verdict::is_accepted));
    let mine: Vec<MaskDeal> = all.iter().skip(1).map(|d| d[4].clone()).collect();
    let pool = super::super::MaskPool::from_checked_deals(servers[4], &verdicts, &mine, 2);
    assert_eq!(pool.unwrap().len(), 3);
    // Misuse is an error: another node's deals, a dealer judged twice.
    let theirs: Vec<MaskDeal> = all.iter().map(|d| d[0].clone()).collect();
    assert!(super::super::MaskPool::from_checked_deals(servers[4], &verdicts, &theirs, 2).is_err());
    let twice = [verdicts[0].clone(), verdicts[0].clone()];
    assert!(super::super::MaskPool::from_checked_deals(servers[0], &twice, &[], 2).is_err());
    let dup = [servers[0], servers[0], servers[1]];
    assert!(deal_checked([3; 32], MaskKind::ZeroSum, servers[0], &dup, 2, 1, &mut rng).is_err());
}

#[test]
fn messages_round_trip() {
    let (c, deals) = setup(2, 4);
    assert_eq!(MaskCommitment::from_bytes(&c.to_bytes()).unwrap(), c);
    assert_eq!(c.to_bytes().len(), MaskCommitment::encoded_len(4));
    assert_eq!(deals[2].to_bytes().len(), MaskDeal::encoded_len(4));
    assert_eq!(
        MaskDeal::from_bytes(&deals[2].to_bytes()).unwrap(),
        deals[2]
    );
    let check = deals[2].verify(&c).unwrap();
    let b = check.to_bytes();
    assert_eq!(b.len(), MaskCheck::ENCODED_LEN);
    assert_eq!(MaskCheck::from_bytes(&b).unwrap(), check);
    assert!(MaskCheck::from_bytes(&c.to_bytes()).is_err());
}
