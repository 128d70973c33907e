use super::*;

/// The findings of `text` as (kind, matched text) pairs.
fn found(text: &str) -> Vec<(PiiKind, &str)> {
    find(text).into_iter().map(|finding| (finding.kind, &text[finding.range])).collect()
}

fn assert_none(text: &str) {
    assert_eq!(found(text), vec![], "{text:?}");
}

#[test]
fn every_pattern_compiles() {
    assert!(contact::patterns_compile());
    assert!(credentials::patterns_compile());
    assert!(financial::patterns_compile());
    assert!(network::patterns_compile());
}

#[test]
fn emails() {
    assert_eq!(
        found("Write to jane.o'neil@x.io or Jürgen.Schmidt+news@mail.example.co.uk."),
        vec![(PiiKind::Email, "neil@x.io"), (PiiKind::Email, "rgen.Schmidt+news@mail.example.co.uk")]
    );
    assert_eq!(found("<bob_smith@example.com>"), vec![(PiiKind::Email, "bob_smith@example.com")]);
    assert_none("use git@ and @mentions, or a@b");
}

#[test]
fn phones_in_international_and_national_formats() {
    let cases = [
        "+1-415-555-0132",
        "+44 20 7946 0958",
        "+49(0)30 1234567",
        "+49 (0) 8912 345678",
        "+33 (0)1 42 68 53 00",
        "+91 98765 43210",
        "0049 30 1234567",
        "(415) 555-0132",
        "415-555-0132",
        "415.555.0132",
        "1-415-555-0132",
        "(415)555-0132x1234",
        "07700 900123",
        "(0113) 496 0999",
        "030 12345678",
        "(03641) 12345",
        "01 42 68 53 00",
        "0142685300",
        "022-24567890",
    ];
    for phone in cases {
        let text = format!("Reach me on {phone} tomorrow.");
        assert_eq!(found(&text), vec![(PiiKind::Phone, phone)], "{text}");
    }
}

#[test]
fn a_bare_ten_digit_number_is_a_phone_only_when_announced() {
    assert_eq!(found("call 4155550132 today"), vec![(PiiKind::Phone, "4155550132")]);
    assert_eq!(found("Mobile: 9876543210"), vec![(PiiKind::Phone, "9876543210")]);
    assert_none("order 4155550132 shipped");
}

#[test]
fn phone_look_alikes_are_not_phones() {
    for text in [
        "Order #4155550132 shipped",
        "invoice INV-2024-0012345 is due",
        "at 2024-03-05 12:30:00 UTC",
        "on 12/05/2024 10:30",
        "build 1709651234 of version 10.4.12.1234",
        "SKU 4155-55-0132-7 in stock",
        "Unix time 1709651234567",
        "ORD-00012345678",
        "pi is 3.14159265358979",
    ] {
        assert_none(text);
    }
}

#[test]
fn payment_cards_are_luhn_checked() {
    assert_eq!(
        found("Visa 4111 1111 1111 1111 exp 12/27, Amex 3782-822463-10005, MC 5555555555554444."),
        vec![
            (PiiKind::PaymentCard, "4111 1111 1111 1111"),
            (PiiKind::PaymentCard, "3782-822463-10005"),
            (PiiKind::PaymentCard, "5555555555554444"),
        ]
    );
    assert_eq!(found("card 4111111111111111 12 27"), vec![(PiiKind::PaymentCard, "4111111111111111")]);
    assert_none("card 4111 1111 1111 1112");
    assert_none("tracking 9400111899223344556677");
    assert_none("id-4111111111111111");
    assert_none("EAN 4033578374552 and GTIN-13: 4176459330589 on the label");
}

#[test]
fn ibans_are_mod_97_checked_with_country_lengths() {
    assert_eq!(
        found("IBAN DE89 3704 0044 0532 0130 00 BIC COBADEFFXXX and GB82WEST12345698765432."),
        vec![(PiiKind::Iban, "DE89 3704 0044 0532 0130 00"), (PiiKind::Iban, "GB82WEST12345698765432")]
    );
    assert_none("IBAN DE88 3704 0044 0532 0130 00");
    assert_none("GB82WEST123456987654321");
}

#[test]
fn us_ssns_follow_the_allocation_rules() {
    assert_eq!(found("SSN 123-45-6789."), vec![(PiiKind::UsSsn, "123-45-6789")]);
    for text in
        ["SSN 000-45-6789", "SSN 666-45-6789", "SSN 912-45-6789", "SSN 123-00-6789", "SSN 123-45-0000"]
    {
        assert_none(text);
    }
    assert_none("part 123-45-6789-01");
}

#[test]
fn ip_addresses() {
    assert_eq!(
        found("from 192.168.0.1 and 2001:db8::8a2e:370:7334, then fe80::1ff:fe23:4567:890a."),
        vec![
            (PiiKind::IpAddress, "192.168.0.1"),
            (PiiKind::IpAddress, "2001:db8::8a2e:370:7334"),
            (PiiKind::IpAddress, "fe80::1ff:fe23:4567:890a"),
        ]
    );
    for text in [
        "version 1.2.3.4-beta",
        "Firmware version 7.1.63.161 is installed",
        "See section 4.4.1.9 and §3.2.1.1",
        "ver. 2.0.1.5",
        "v1.2.3.4",
        "256.1.1.1",
        "01.02.03.04",
        "at 12:34:56",
        "mac 00:1a:2b:3c:4d:5e",
        "std::net::Ipv6Addr and Vec::new and a::b",
        "10.0.19041.1234",
    ] {
        assert_none(text);
    }
}

#[test]
fn credentials_in_their_real_formats() {
    let openai = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4zAb7cDe0fGh3iJk6lMn9oPq2rSt5uVw8x";
    let anthropic = "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Ji1Hg0FeDcBa9Zx8Yw7Vu6Ts5Rq4Po3Nm2Lk1Ji0HgAA";
    let aws = "AKIAIOSFODNN7EXAMPLE";
    let github = "ghp_16C7e42F292c6912E7710c838347Ae178B4a";
    let slack = "xoxb-2048123456-4096123456789-AbCdEfGhIjKlMnOpQrStUvWx";
    let text = format!("keys: {openai} {anthropic} {aws} {github} {slack}");
    assert_eq!(
        found(&text),
        vec![
            (PiiKind::ApiKey, openai),
            (PiiKind::ApiKey, anthropic),
            (PiiKind::AwsAccessKey, aws),
            (PiiKind::GithubToken, github),
            (PiiKind::SlackToken, slack),
        ]
    );
    assert_none("pip install sk-learn-tutorial-examples and AKIA alone");
}

#[test]
fn jwts_need_a_json_header_with_alg() {
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U";
    assert_eq!(found(&format!("Bearer {jwt}")), vec![(PiiKind::Jwt, jwt)]);
    // `{"typ":"JWT"}` without `alg`.
    assert_none("eyJ0eXAiOiJKV1QifQ.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N");
}

#[test]
fn pem_private_keys_whole_or_cut() {
    let key = "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA1zKdm9Vk\nq3f0a8Tz==\n-----END RSA PRIVATE KEY-----";
    assert_eq!(found(&format!("key:\n{key}\nthanks")), vec![(PiiKind::PrivateKey, key)]);
    let cut = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\nMIIEowIBAAKCAQEA1zKdm9Vk";
    assert_eq!(found(&format!("{cut}... (truncated)")), vec![(PiiKind::PrivateKey, cut)]);
    assert_none("-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----");
}

#[test]
fn high_entropy_values_assigned_to_secret_names() {
    assert_eq!(
        found(
            r#"DB_PASSWORD=Xk9#mQ2vLp7zR4tw and "client_secret": "a8F3kL0qZ7xW2mN5pR9s", token: 9fK2LmQ8xZ4vB7nT"#
        ),
        vec![
            (PiiKind::HighEntropySecret, "Xk9#mQ2vLp7zR4tw"),
            (PiiKind::HighEntropySecret, "a8F3kL0qZ7xW2mN5pR9s"),
            (PiiKind::HighEntropySecret, "9fK2LmQ8xZ4vB7nT"),
        ]
    );
    assert_eq!(
        found(r#"stripe_key = "sk_live_51H8xYzAbCdEfGhIjKlMnOpQr"; Das Passwort ist Zq8#Lm2vXp9kRt4w."#),
        vec![
            (PiiKind::HighEntropySecret, "sk_live_51H8xYzAbCdEfGhIjKlMnOpQr"),
            (PiiKind::HighEntropySecret, "Zq8#Lm2vXp9kRt4w"),
        ]
    );
    for text in [
        "password = os.environ['DB_PASSWORD']",
        "token_count = 1234",
        "api_key: ${API_KEY}",
        "secret_path = /var/run/secrets/app1",
        "password: aaaaaaaaaaaa1",
        "the token is long",
        "my password is hunter2",
        "primary_key = id",
    ] {
        assert_none(text);
    }
}

#[test]
fn findings_are_sorted_apart_and_bounded() {
    let many = "a@b.io ".repeat(MAX_FINDINGS + 50);
    let findings = find(&many);
    assert_eq!(findings.len(), MAX_FINDINGS);
    assert!(findings.windows(2).all(|pair| pair[0].range.end <= pair[1].range.start));
    let (findings, searched) = find_prefix(&many);
    assert_eq!(findings.len(), MAX_FINDINGS);
    assert_eq!(searched, MAX_FINDINGS * 7, "up to the first e-mail over the bound");
    assert_eq!(find_prefix("a@b.io").1, 6);
}

#[test]
fn overlaps_keep_the_more_specific_finding() {
    // The IBAN's digits would also pass as a digit run; the secret assignment holds a JWT.
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlMTIzNDU2Nzg5MA";
    assert_eq!(found(&format!("token={jwt}")), vec![(PiiKind::Jwt, jwt)]);
}

#[test]
fn hostile_input_does_not_panic() {
    for text in [
        "",
        "@",
        "-----BEGIN RSA PRIVATE KEY-----",
        "eyJ.eyJ.",
        "::::",
        "+(((((((0)))))))",
        "é@é.éé 4111 1111 1111 1111é",
    ] {
        let _ = find(text);
    }
    let digits = "1234567890 ".repeat(10_000);
    assert!(find(&digits).len() <= MAX_FINDINGS);
}

#[test]
fn many_pem_headers_without_end_lines_are_each_a_finding() {
    let text = "-----BEGIN PRIVATE KEY-----\nMIIB\n".repeat(50);
    let findings = find(&text);
    assert_eq!(findings.len(), 50);
    assert!(findings.iter().all(
        |finding| finding.kind == PiiKind::PrivateKey && text[finding.range.clone()].ends_with("MIIB\n")
    ));
}

#[test]
fn kind_names_round_trip_through_as_str_from_name_and_serde() {
    for kind in PiiKind::ALL {
        assert_eq!(PiiKind::from_name(kind.as_str()), Some(kind));
        assert_eq!(serde_json::to_value(kind).unwrap(), serde_json::Value::from(kind.as_str()));
    }
    assert_eq!(PiiKind::from_name("credit_card"), None);
}

#[test]
fn a_kind_over_its_bound_stops_the_search_before_other_kinds_are_cut() {
    // 1000 e-mails fill the e-mail bound; the card after them must not be reported as
    // searched past when it was not.
    let text = format!("{}card 4111 1111 1111 1111 and x@y.io", "a@b.io ".repeat(MAX_FINDINGS));
    let (findings, searched) = find_prefix(&text);
    assert_eq!(findings.len(), MAX_FINDINGS);
    let rest = &text[searched..];
    assert_eq!(
        find(rest).iter().map(|finding| finding.kind).collect::<Vec<_>>(),
        vec![PiiKind::PaymentCard, PiiKind::Email]
    );
}

mod fuzz {
    use proptest::prelude::*;

    use super::super::super::redact::Redactor;
    use super::super::super::stream_redact::StreamRedactor;
    use super::*;

    proptest! {
        #[test]
        fn any_text_gives_sorted_findings_on_char_boundaries(text in "(?s).{0,400}") {
            let findings = find(&text);
            for finding in &findings {
                prop_assert!(text.get(finding.range.clone()).is_some_and(|value| !value.is_empty()));
            }
            prop_assert!(findings.windows(2).all(|pair| pair[0].range.end <= pair[1].range.start));
            let _ = Redactor::new().redact_all(&text);
        }

        #[test]
        fn pii_shaped_noise_never_panics_streamed(
            text in "[0-9a-fA-F:.@+() \\-/=_#xX\\n]{0,600}",
            chunk in 1usize..40,
        ) {
            let mut stream = StreamRedactor::default();
            let mut cut = 0;
            while cut < text.len() {
                let next = (cut + chunk).min(text.len());
                let _ = stream.push(&text[cut..next]);
                cut = next;
            }
            let _ = stream.finish();
            prop_assert_eq!(stream.held(), 0);
        }
    }
}
