//! Compares two signatures: the first fact they disagree on is the verdict.

use super::bounded::Bounded;
use super::signature::{MAX_WORDS, Quantity, Role, Signature};
use super::{Difference, Verdict};

/// The verdict on two read questions.
pub(super) fn compare(stored: &Signature, new: &Signature) -> Verdict {
    let refuse = Verdict::Different;
    if stored.overflowed() || new.overflowed() {
        return refuse(Difference::TooLong);
    }
    if !same_set(stored.quotes.as_slice(), new.quotes.as_slice()) {
        return refuse(Difference::Quote);
    }
    if (stored.foreign || new.foreign) && !same_words(stored, new) {
        return refuse(Difference::Wording);
    }
    if stored.negations != new.negations || prefix_negates(stored, new) || prefix_negates(new, stored) {
        return refuse(Difference::Negation);
    }
    if let Some(difference) = quantities_differ(stored.quantities.as_slice(), new.quantities.as_slice()) {
        return refuse(difference);
    }
    let (stored_units, new_units) = (stored.bare_units.as_slice(), new.bare_units.as_slice());
    if !stored_units.is_empty() && !new_units.is_empty() && !same_set(stored_units, new_units) {
        return refuse(Difference::Unit);
    }
    if !same_set(stored.dates.as_slice(), new.dates.as_slice()) {
        return refuse(Difference::Date);
    }
    if !entities_present(stored, new) || !entities_present(new, stored) {
        return refuse(Difference::Entity);
    }
    if scales_disagree(stored, new) {
        return refuse(Difference::Comparison);
    }
    if let Some(difference) = roles_exchanged(stored, new) {
        return refuse(difference);
    }
    if one_word_replaced(stored, new) {
        return refuse(Difference::Substitution);
    }
    Verdict::Same
}

/// Equal as sets (both lists hold each item once).
fn same_set<T: PartialEq>(a: &[T], b: &[T]) -> bool {
    a.len() == b.len() && a.iter().all(|item| b.contains(item))
}

/// The same words, each as often, in any order: all the guard can check in other languages.
fn same_words(a: &Signature, b: &Signature) -> bool {
    let (a, b) = (a.words.as_slice(), b.words.as_slice());
    a.len() == b.len()
        && a.iter().all(|word| {
            let count = |words: &[super::signature::Word]| {
                words.iter().filter(|other| other.stem == word.stem).count()
            };
            count(a) == count(b)
        })
}

/// `a` says "unsafe" where `b` says "safe".
fn prefix_negates(a: &Signature, b: &Signature) -> bool {
    let has =
        |signature: &Signature, stem: u64| signature.words.as_slice().iter().any(|word| word.stem == stem);
    a.prefixed
        .as_slice()
        .iter()
        .any(|prefixed| has(b, prefixed.rest) && !has(a, prefixed.rest) && !has(b, prefixed.whole))
}

/// Numbers must match with their units: the same values in other units is a unit difference.
fn quantities_differ(a: &[Quantity], b: &[Quantity]) -> Option<Difference> {
    if same_set(a, b) {
        return None;
    }
    let values_in = |values: &[Quantity], other: &[Quantity]| {
        values.iter().all(|quantity| other.iter().any(|candidate| candidate.value == quantity.value))
    };
    if values_in(a, b) && values_in(b, a) { Some(Difference::Unit) } else { Some(Difference::Number) }
}

/// Every name in `a` appears somewhere in `b` (in any case: "python" names Python too).
fn entities_present(a: &Signature, b: &Signature) -> bool {
    a.entities.as_slice().iter().all(|entity| b.words.as_slice().iter().any(|word| word.stem == *entity))
}

/// Both compare along a scale, in opposite directions ("faster" and "slower").
fn scales_disagree(a: &Signature, b: &Signature) -> bool {
    let (a, b) = (a.scales.as_slice(), b.scales.as_slice());
    a.iter().chain(b).any(|scale| {
        let signs = |scales: &[super::signature::Scale]| {
            scales
                .iter()
                .filter(|other| other.axis == scale.axis)
                .fold(0u8, |mask, other| mask | sign_bit(other.sign))
        };
        let (in_a, in_b) = (signs(a), signs(b));
        in_a != 0 && in_b != 0 && in_a != in_b
    })
}

fn sign_bit(sign: i8) -> u8 {
    if sign > 0 { 1 } else { 2 }
}

/// A content word's roles, as a mask of [`Role`] bits.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Roles {
    stem: u64,
    mask: u8,
    unit: bool,
}

fn roles(signature: &Signature) -> Bounded<Roles, MAX_WORDS> {
    let mut roles: Bounded<Roles, MAX_WORDS> = Bounded::default();
    for word in signature.words.as_slice().iter().filter(|word| word.content) {
        let bit = role_bit(word.role);
        match roles.as_mut_slice().iter_mut().find(|roles| roles.stem == word.stem) {
            Some(found) => found.mask |= bit,
            None => roles.push(Roles { stem: word.stem, mask: bit, unit: word.unit }),
        }
    }
    roles
}

fn role_bit(role: Role) -> u8 {
    1u8.checked_shl(u32::from(role)).unwrap_or(0)
}

/// Two shared words swapped roles: "X than Y" and "Y than X", "from A to B" and "from B to A".
fn roles_exchanged(a: &Signature, b: &Signature) -> Option<Difference> {
    let (roles_a, roles_b) = (roles(a), roles(b));
    let mut shared: Bounded<(Roles, u8), MAX_WORDS> = Bounded::default();
    for word in roles_a.as_slice() {
        if let Some(other) = roles_b.as_slice().iter().find(|other| other.stem == word.stem) {
            shared.push((*word, other.mask));
        }
    }
    let shared = shared.as_slice();
    for (index, (x, x_in_b)) in shared.iter().enumerate() {
        for (y, y_in_b) in shared.iter().skip(index + 1) {
            if x.mask != y.mask && x.mask == *y_in_b && y.mask == *x_in_b {
                return Some(if x.unit && y.unit { Difference::Unit } else { Difference::Comparison });
            }
        }
    }
    None
}

/// The same words in the same order but one ordinary word replaced by another ("Can dogs eat
/// grapes?" / "Can cats eat grapes?"): a minimal edit changes what is asked far more often
/// than it swaps in a synonym, and the embedding barely moves.
fn one_word_replaced(a: &Signature, b: &Signature) -> bool {
    let (a, b) = (a.words.as_slice(), b.words.as_slice());
    if a.len() != b.len() {
        return false;
    }
    let mut differing = a.iter().zip(b).filter(|(x, y)| x.stem != y.stem);
    matches!((differing.next(), differing.next()), (Some((x, y)), None) if x.plain && y.plain)
}
