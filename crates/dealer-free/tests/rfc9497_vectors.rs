#![allow(clippy::unwrap_used, clippy::expect_used)] // test code
//! RFC 9497 Appendix A.1 test vectors (ristretto255-SHA512, OPRF and VOPRF modes),
//! checked byte for byte.

use dealer_free::oprf::{
    Blind, BlindedElement, EvaluationElement, Mode, Proof, ProofRandomness, PublicKey,
    blind_evaluate, blind_with_blind, derive_key_pair, finalize,
    verifiable_blind_evaluate_batch_with_proof_randomness,
    verifiable_blind_evaluate_with_proof_randomness, verifiable_finalize,
    verifiable_finalize_batch,
};

const FIXTURE: &str = include_str!(concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/vectors/rfc9497/ristretto255-sha512.txt"
));

/// One `~~~` block: ordered `key = value` pairs, wrapped lines joined.
type Block = Vec<(String, String)>;

struct Section {
    mode: Mode,
    key: Block,
    vectors: Vec<Block>,
}

fn parse() -> Vec<Section> {
    let mut sections: Vec<Section> = Vec::new();
    let mut in_block = false;
    let mut block: Block = Vec::new();
    for line in FIXTURE.lines() {
        let line = line.trim_end();
        if line.starts_with('#') && !in_block {
            if line == "### OPRF Mode" {
                sections.push(Section {
                    mode: Mode::Oprf,
                    key: Vec::new(),
                    vectors: Vec::new(),
                });
            } else if line == "### VOPRF Mode" {
                sections.push(Section {
                    mode: Mode::Voprf,
                    key: Vec::new(),
                    vectors: Vec::new(),
                });
            }
            continue;
        }
        if line == "~~~" {
            if in_block {
                let s = sections.last_mut().expect("block outside a section");
                if s.key.is_empty() {
                    s.key = std::mem::take(&mut block);
                } else {
                    s.vectors.push(std::mem::take(&mut block));
                }
            }
            in_block = !in_block;
            continue;
        }
        if !in_block {
            continue;
        }
        if let Some((k, v)) = line.split_once(" = ") {
            block.push((k.to_string(), v.to_string()));
        } else {
            block
                .last_mut()
                .expect("continuation without key")
                .1
                .push_str(line);
        }
    }
    sections
}

fn get<'a>(b: &'a Block, k: &str) -> &'a str {
    &b.iter()
        .find(|(kk, _)| kk == k)
        .unwrap_or_else(|| panic!("missing {k}"))
        .1
}

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex length: {s}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex_list(s: &str) -> Vec<Vec<u8>> {
    s.split(',').map(hex).collect()
}

fn arr<const N: usize>(v: &[u8]) -> [u8; N] {
    v.try_into().expect("wrong length")
}

#[test]
fn rfc9497_ristretto255_sha512() {
    let sections = parse();
    assert_eq!(sections.len(), 2, "expected OPRF and VOPRF sections");
    let mut checked = 0;
    for s in &sections {
        let seed: [u8; 32] = arr(&hex(get(&s.key, "Seed")));
        let info = hex(get(&s.key, "KeyInfo"));
        let (sk, pk) = derive_key_pair(s.mode, &seed, &info).unwrap();
        assert_eq!(sk.to_bytes().to_vec(), hex(get(&s.key, "skSm")), "skSm");
        if s.mode == Mode::Voprf {
            assert_eq!(pk.to_bytes().to_vec(), hex(get(&s.key, "pkSm")), "pkSm");
        }
        for v in &s.vectors {
            let inputs = hex_list(get(v, "Input"));
            let blinds: Vec<Blind> = hex_list(get(v, "Blind"))
                .iter()
                .map(|b| Blind::from_bytes(&arr(b)).unwrap())
                .collect();
            let exp_blinded = hex_list(get(v, "BlindedElement"));
            let exp_eval = hex_list(get(v, "EvaluationElement"));
            let exp_out = hex_list(get(v, "Output"));
            let n = inputs.len();
            assert!(
                blinds.len() == n
                    && exp_blinded.len() == n
                    && exp_eval.len() == n
                    && exp_out.len() == n
            );

            let blinded: Vec<BlindedElement> = inputs
                .iter()
                .zip(&blinds)
                .map(|(i, b)| blind_with_blind(s.mode, i, b).unwrap())
                .collect();
            for (b, e) in blinded.iter().zip(&exp_blinded) {
                assert_eq!(b.to_bytes().to_vec(), *e, "BlindedElement");
                assert_eq!(BlindedElement::from_bytes(&arr(e)).unwrap(), *b);
            }
            match s.mode {
                Mode::Oprf => {
                    for i in 0..n {
                        let ev = blind_evaluate(&sk, &blinded[i]);
                        assert_eq!(ev.to_bytes().to_vec(), exp_eval[i], "EvaluationElement");
                        let out = finalize(&inputs[i], &blinds[i], &ev).unwrap();
                        assert_eq!(out.to_vec(), exp_out[i], "Output");
                    }
                }
                Mode::Voprf => {
                    let r = ProofRandomness::from_bytes(&arr(&hex(get(v, "ProofRandomScalar"))))
                        .unwrap();
                    let exp_proof = hex(get(v, "Proof"));
                    let pk = PublicKey::from_bytes(&pk.to_bytes()).unwrap();
                    let (evs, proof) = if n == 1 {
                        let (ev, p) =
                            verifiable_blind_evaluate_with_proof_randomness(&sk, &blinded[0], &r)
                                .unwrap();
                        (vec![ev], p)
                    } else {
                        verifiable_blind_evaluate_batch_with_proof_randomness(&sk, &blinded, &r)
                            .unwrap()
                    };
                    assert_eq!(proof.to_bytes().to_vec(), exp_proof, "Proof");
                    for (ev, e) in evs.iter().zip(&exp_eval) {
                        assert_eq!(ev.to_bytes().to_vec(), *e, "EvaluationElement");
                    }
                    // Client side works from the wire encodings.
                    let evs: Vec<EvaluationElement> = exp_eval
                        .iter()
                        .map(|e| EvaluationElement::from_bytes(&arr(e)).unwrap())
                        .collect();
                    let proof = Proof::from_bytes(&arr(&exp_proof)).unwrap();
                    let input_refs: Vec<&[u8]> = inputs.iter().map(Vec::as_slice).collect();
                    let outs = verifiable_finalize_batch(
                        &input_refs,
                        &blinds,
                        &blinded,
                        &evs,
                        &pk,
                        &proof,
                    )
                    .unwrap();
                    for (o, e) in outs.iter().zip(&exp_out) {
                        assert_eq!(o.to_vec(), *e, "Output");
                    }
                    if n == 1 {
                        let out = verifiable_finalize(
                            &inputs[0],
                            &blinds[0],
                            &blinded[0],
                            &evs[0],
                            &pk,
                            &proof,
                        )
                        .unwrap();
                        assert_eq!(out.to_vec(), exp_out[0], "Output");
                    }
                }
                _ => unreachable!(),
            }
            checked += 1;
        }
    }
    assert_eq!(checked, 5, "2 OPRF + 3 VOPRF vectors");
}
