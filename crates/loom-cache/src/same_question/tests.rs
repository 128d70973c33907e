//! The guard on hand-picked pairs: each check refuses what it should and lets paraphrases by.

use proptest::prelude::*;

use super::{Difference, Verdict, same_question};

fn refused(a: &str, b: &str) -> Option<Difference> {
    let verdict = same_question(a, b);
    // The verdict does not depend on which side is stored.
    assert_eq!(verdict.is_same(), same_question(b, a).is_same(), "asymmetric: {a:?} / {b:?}");
    verdict.difference()
}

fn assert_refused(difference: Difference, pairs: &[(&str, &str)]) {
    for (a, b) in pairs {
        assert_eq!(refused(a, b), Some(difference), "{a:?} / {b:?}");
    }
}

fn assert_allowed(pairs: &[(&str, &str)]) {
    for (a, b) in pairs {
        assert_eq!(refused(a, b), None, "{a:?} / {b:?}");
    }
}

#[test]
fn negation_in_its_forms_must_match() {
    assert_refused(
        Difference::Negation,
        &[
            ("Is Python dynamically typed?", "Is Python not dynamically typed?"),
            ("Why does my code compile?", "Why doesn't my code compile?"),
            ("Why does my code compile?", "Why doesnt my code compile?"),
            ("Can I make bread with yeast?", "Can I make bread without yeast?"),
            ("Is it safe to mix these?", "Is it unsafe to mix these?"),
            ("Is the square root of 2 rational?", "Is the square root of 2 irrational?"),
            ("Does the series converge?", "Does the series never converge?"),
            ("I can log in", "I cannot log in"),
        ],
    );
    assert_allowed(&[
        ("Why can't I log in?", "I'm unable to log in, what's wrong?"),
        ("Why doesn't the app start?", "Why does the app not start?"),
    ]);
}

#[test]
fn numbers_written_either_way_must_match() {
    assert_refused(
        Difference::Number,
        &[
            ("Convert 10 miles to km", "Convert 12 miles to km"),
            ("Can I bring ten bottles?", "Can I bring twelve bottles?"),
            ("What is 15% of 80?", "What is 15% of 90?"),
            ("Is $10,000 enough?", "Is $20,000 enough?"),
            ("What is the 3rd planet?", "What is the 4th planet?"),
            ("Why was I charged twice?", "Why was I charged three times?"),
        ],
    );
    assert_allowed(&[
        ("Convert ten miles to km", "Convert 10 miles to km"),
        ("What is 15% of 80?", "Calculate 15 percent of 80"),
        ("How many eggs in a dozen?", "How many eggs are in a dozen?"),
        ("How many feet are in a mile?", "How many feet make up one mile?"),
        ("Is 2,500 steps a lot?", "Is two thousand five hundred steps a lot?"),
    ]);
}

#[test]
fn units_and_conversion_direction_must_match() {
    assert_refused(
        Difference::Unit,
        &[
            ("Convert 5 km to miles", "Convert 5 miles to km"),
            ("Is 5 mg too much?", "Is 5 g too much?"),
            ("Is 30 mph fast?", "Is 30 km/h fast?"),
            ("What is 100 USD in EUR?", "What is 100 EUR in USD?"),
            ("Roast at 200 °C", "Roast at 200 °F"),
            ("How do I convert km to miles?", "How do I convert miles to km?"),
            ("How many liters of water a day?", "How many gallons of water a day?"),
        ],
    );
    assert_allowed(&[
        ("Convert 5 kg to pounds", "How many pounds is 5 kilograms?"),
        ("Convert 100 degrees Fahrenheit to Celsius", "What is 100°F in Celsius?"),
        ("Is 5km a long run?", "Is 5 kilometers a long run?"),
    ]);
}

#[test]
fn dates_and_times_must_match() {
    assert_refused(
        Difference::Date,
        &[
            ("Tax brackets for 2024", "Tax brackets for 2025"),
            ("Is the museum open on Monday?", "Is the museum open on Tuesday?"),
            ("What's the weather today?", "What's the weather tomorrow?"),
            ("What happened yesterday?", "What happened last week?"),
            ("Can I book for March 15?", "Can I book for March 16?"),
            ("Is the store open at 9am?", "Is the store open at 9pm?"),
            ("Rates this month", "Rates last month"),
            ("Do I need a flu shot this winter?", "Do I need a flu shot this summer?"),
        ],
    );
    assert_allowed(&[
        ("May I change my order?", "Can I change my order?"),
        ("How much sleep do I need each night?", "How much sleep do I need?"),
        ("Why do leaves change color in autumn?", "Why do leaves change colour in the fall?"),
    ]);
}

#[test]
fn names_products_and_identifiers_must_match() {
    assert_refused(
        Difference::Entity,
        &[
            ("How many moons does Jupiter have?", "How many moons does Saturn have?"),
            ("How do I install numpy?", "How do I install pandas?"),
            ("What does the useEffect hook do?", "What does the useState hook do?"),
            ("What does os.path.join do?", "What does os.path.split do?"),
            ("What is Amazon's return policy?", "What is Walmart's return policy?"),
            ("Tokyo weather", "Osaka weather"),
            ("Is GPT-4 better?", "Is GPT-3 better?"),
        ],
    );
    assert_allowed(&[
        ("how do i install numpy", "How do I install NumPy?"),
        ("Python is dynamically typed?", "Is Python dynamically typed?"),
        ("How Do I Reset My Password", "how do i reset my password?"),
        ("How do ETFs work?", "How does an ETF work?"),
    ]);
}

#[test]
fn quoted_strings_must_match_exactly() {
    assert_refused(
        Difference::Quote,
        &[
            (r#"What does "permission denied" mean?"#, r#"What does "connection refused" mean?"#),
            ("What does `git reset --hard` do?", "What does `git reset --soft` do?"),
            ("Why does it print 'command not found'?", "Why does it print 'permission denied'?"),
            ("What does “net 30” mean?", "What does “net 60” mean?"),
        ],
    );
    assert_allowed(&[(
        r#"What does "permission denied" mean?"#,
        r#"What is the meaning of "permission denied"?"#,
    )]);
}

#[test]
fn comparisons_must_point_the_same_way() {
    assert_refused(
        Difference::Comparison,
        &[
            ("Is Python faster than Java?", "Is Java faster than Python?"),
            ("Is Python faster than Java?", "Is Python slower than Java?"),
            ("Is flying more expensive than driving?", "Is flying cheaper than driving?"),
            ("Should I eat before a workout?", "Should I eat after a workout?"),
            ("Train from London to Paris", "Train from Paris to London"),
            ("How do I convert a string to an integer?", "How do I convert an integer to a string?"),
            ("Is a cat bigger than a dog?", "Is a dog bigger than a cat?"),
            ("Is 0.1 greater than 0.01?", "Is 0.1 less than 0.01?"),
        ],
    );
    assert_allowed(&[
        ("Which is bigger, the Sun or Jupiter?", "Which is larger, Jupiter or the Sun?"),
        ("Flights from London to Paris", "Flights to Paris from London"),
        ("Python vs Java", "Java vs Python"),
    ]);
}

#[test]
fn one_word_replaced_in_the_same_wording_is_another_question() {
    assert_refused(
        Difference::Substitution,
        &[
            ("Can dogs eat grapes?", "Can cats eat grapes?"),
            ("How do I boil an egg?", "How do I poach an egg?"),
            ("What is the perimeter of a square?", "What is the area of a square?"),
        ],
    );
    assert_allowed(&[
        // A word added, or a spelling changed, is no replacement.
        ("Can dogs eat grapes?", "Can my dogs eat grapes?"),
        ("Can dogs eat grapes?", "can a dog eat grapes"),
        // Scale words have their own check.
        ("Which planet is the biggest?", "Which planet is the largest?"),
    ]);
}

#[test]
fn other_languages_need_the_same_words() {
    assert_eq!(
        refused("¿Cómo puedo cambiar mi contraseña?", "¿Cómo puedo borrar mi contraseña?"),
        Some(Difference::Wording)
    );
    assert_eq!(refused("¿Cómo puedo cambiar mi contraseña?", "¿cómo puedo cambiar mi contraseña"), None);
    // Another language never matches an English question.
    assert_eq!(
        refused("Comment changer mon mot de passe ?", "How do I change my password?"),
        Some(Difference::Wording)
    );
}

#[test]
fn texts_too_long_to_read_whole_never_match() {
    let long = "word ".repeat(400);
    assert_eq!(same_question(&long, &format!("{long} more")), Verdict::Different(Difference::TooLong));
    assert_eq!(same_question(&long, &long), Verdict::Same);
}

#[test]
fn empty_and_odd_texts_are_read_without_panicking() {
    for (a, b) in
        [("", ""), ("", "?"), ("$", "-"), ("°", "''"), ("'''", "\"\"\""), ("1e9999", "9".repeat(40).as_str())]
    {
        let _ = same_question(a, b);
    }
    assert_eq!(same_question("", ""), Verdict::Same);
}

proptest! {
    #[test]
    fn any_text_is_read_symmetrically_and_matches_itself(a in "\\PC{0,200}", b in "\\PC{0,200}") {
        prop_assert_eq!(same_question(&a, &b).is_same(), same_question(&b, &a).is_same());
        let copy = a.clone();
        prop_assert!(same_question(&a, &copy).is_same());
    }

    #[test]
    fn any_question_shaped_text_is_read_without_panicking(
        a in "[A-Za-z0-9 $%°'\"`.,:/-]{0,120}",
        b in "[A-Za-z0-9 $%°'\"`.,:/-]{0,120}",
    ) {
        prop_assert_eq!(same_question(&a, &b).is_same(), same_question(&b, &a).is_same());
    }
}
