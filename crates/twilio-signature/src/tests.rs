//! The vectors of `docs/twilio-reference.md` §8.1 (from twilio-python's
//! and twilio-node's own test suites) and their negative cases.

use super::*;

const TOKEN: &str = "12345";
const U: &str = "https://mycompany.com/myapp.php?foo=1&bar=2";

fn p() -> Vec<(&'static str, &'static str)> {
    vec![
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+14158675309"),
        ("Digits", "1234"),
        ("From", "+14158675309"),
        ("To", "+18005551212"),
    ]
}

fn validator() -> RequestValidator {
    RequestValidator::new(TOKEN)
}

#[test]
fn string_to_sign_matches_the_documented_example() {
    assert_eq!(
        string_to_sign(U, &p()),
        "https://mycompany.com/myapp.php?foo=1&bar=2CallSidCA1234567890ABCDECaller+14158675309Digits1234From+14158675309To+18005551212"
    );
}

#[test]
fn vector_1_signature_over_the_plain_url() {
    assert_eq!(validator().sign(U, &p()), "RSOYDt4T1cUTdK1PDd93/VVr8B8=");
    assert_eq!(
        validator().validate_form(U, &p(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        Ok(())
    );
}

#[test]
fn vector_2_https_signature_with_port_443_validates_against_the_url_without_port() {
    let with_port = "https://mycompany.com:443/myapp.php?foo=1&bar=2";
    assert_eq!(
        validator().sign(with_port, &p()),
        "kvajT1Ptam85bY51eRf/AJRuM3w="
    );
    assert_eq!(
        validator().validate_form(U, &p(), "kvajT1Ptam85bY51eRf/AJRuM3w="),
        Ok(())
    );
}

#[test]
fn vector_3_http_signature_with_port_80_validates_against_the_url_without_port() {
    let signed = "http://mycompany.com:80/myapp.php?foo=1&bar=2";
    assert_eq!(
        validator().sign(signed, &p()),
        "0ZXoZLH/DfblKGATFgpif+LLRf4="
    );
    let received = "http://mycompany.com/myapp.php?foo=1&bar=2";
    assert_eq!(
        validator().validate_form(received, &p(), "0ZXoZLH/DfblKGATFgpif+LLRf4="),
        Ok(())
    );
}

#[test]
fn vector_4_http_with_an_explicit_non_default_port_keeps_it() {
    let url = "http://mycompany.com:1234/myapp.php?foo=1&bar=2";
    assert_eq!(validator().sign(url, &p()), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU=");
    assert_eq!(
        validator().validate_form(url, &p(), "Zmvh+3yNM1Phv2jhDCwEM3q5ebU="),
        Ok(())
    );
}

#[test]
fn vector_5_https_request_on_another_port_accepts_a_signature_without_it() {
    let received = "https://mycompany.com:1234/myapp.php?foo=1&bar=2";
    assert_eq!(
        validator().validate_form(received, &p(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        Ok(())
    );
}

#[test]
fn vector_6_repeated_params_are_sorted_and_deduplicated() {
    let params = [
        ("Sid", "CA123"),
        ("SidAccount", "AC123"),
        ("Digits", "5678"),
        ("Digits", "1234"),
        ("Digits", "1234"),
    ];
    assert_eq!(validator().sign(U, &params), "IK+Dwps556ElfBT0I3Rgjkr1wJU=");
    assert_eq!(
        validator().validate_form(U, &params, "IK+Dwps556ElfBT0I3Rgjkr1wJU="),
        Ok(())
    );
}

#[test]
fn vector_7_repeated_values_in_either_order() {
    let forward = [
        ("MessagingBinding.Address", "+1325xxxxxxx"),
        ("MessagingBinding.Address", "+1415xxxxxxx"),
    ];
    let backward = [
        ("MessagingBinding.Address", "+1415xxxxxxx"),
        ("MessagingBinding.Address", "+1325xxxxxxx"),
    ];
    assert_eq!(
        validator().sign(U, &forward),
        "83O6e2vORAoJHUNzJjDWN1jz+BA="
    );
    assert_eq!(
        validator().sign(U, &backward),
        "83O6e2vORAoJHUNzJjDWN1jz+BA="
    );
}

#[test]
fn vector_8_credentials_in_the_url_are_signed() {
    let url = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
    assert_eq!(validator().sign(url, &p()), "CukzLTc1tT5dXEDIHm/tKBanW10=");
    assert_eq!(
        validator().validate_form(url, &p(), "CukzLTc1tT5dXEDIHm/tKBanW10="),
        Ok(())
    );
}

#[test]
fn vector_9_username_only_in_the_url() {
    let url = "https://user@mycompany.com/myapp.php?foo=1&bar=2";
    assert_eq!(validator().sign(url, &p()), "2YRLlVAflCqxaNicjMpJcSTgzSs=");
    assert_eq!(
        validator().validate_form(url, &p(), "2YRLlVAflCqxaNicjMpJcSTgzSs="),
        Ok(())
    );
}

#[test]
fn vector_10_credentials_and_default_port() {
    let signed = "https://user:pass@mycompany.com:443/myapp.php?foo=1&bar=2";
    assert_eq!(
        validator().sign(signed, &p()),
        "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI="
    );
    let received = "https://user:pass@mycompany.com/myapp.php?foo=1&bar=2";
    assert_eq!(
        validator().validate_form(received, &p(), "ZQFR1PTIZXF2MXB8ZnKCvnnA+rI="),
        Ok(())
    );
}

#[test]
fn vector_11_query_reencoded_like_a_url_parser() {
    let signed = format!("{U}&Body=It%27s+amazing");
    assert_eq!(
        validator().sign(&signed, &p()),
        "TfZzewPq8wqrGlMfyAud8+/IvJ0="
    );
    let received = format!("{U}&Body=It's+amazing");
    assert_eq!(
        validator().validate_form(&received, &p(), "TfZzewPq8wqrGlMfyAud8+/IvJ0="),
        Ok(())
    );
}

#[test]
fn vector_12_classic_docs_example() {
    let params = [
        ("CallSid", "CA1234567890ABCDE"),
        ("Caller", "+12349013030"),
        ("Digits", "1234"),
        ("From", "+12349013030"),
        ("To", "+18005551212"),
    ];
    assert_eq!(validator().sign(U, &params), "0/KCTR6DLpKmkAf8muzZqo1nDgQ=");
}

const JSON_BODY: &str = r#"{"property": "value", "boolean": true}"#;
const JSON_HASH: &str = "0a1ff7634d9ab3b95db5c9a2dfe9416e41502b283a80c7cf19632632f96e6620";

#[test]
fn vector_13_json_body() {
    assert_eq!(body_sha256_hex(JSON_BODY.as_bytes()), JSON_HASH);
    let url = url_with_body_hash(U, JSON_BODY.as_bytes());
    assert_eq!(url, format!("{U}&bodySHA256={JSON_HASH}"));
    assert_eq!(
        validator().sign::<&str, &str>(&url, &[]),
        "a9nBmqA0ju/hNViExpshrM61xv4="
    );
    assert_eq!(
        validator().validate_json(&url, JSON_BODY.as_bytes(), "a9nBmqA0ju/hNViExpshrM61xv4="),
        Ok(())
    );
    assert_eq!(
        validator().validate_request(
            &url,
            JSON_BODY.as_bytes(),
            Some("a9nBmqA0ju/hNViExpshrM61xv4=")
        ),
        Ok(())
    );
}

#[test]
fn vector_14_empty_json_body_signed_with_default_port() {
    let hash = "44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a";
    assert_eq!(body_sha256_hex(b"{}"), hash);
    let signed = format!("https://mycompany.com:443/myapp.php?foo=1&bar=2&bodySHA256={hash}");
    assert_eq!(
        validator().sign::<&str, &str>(&signed, &[]),
        "Ldidvp12m26NI7eqEvxnEpkd9Hc="
    );
    let received = format!("{U}&bodySHA256={hash}");
    assert_eq!(
        validator().validate_json(&received, b"{}", "Ldidvp12m26NI7eqEvxnEpkd9Hc="),
        Ok(())
    );
}

#[test]
fn vector_15_json_body_hash_as_the_only_query_param() {
    let url = url_with_body_hash("https://mycompany.com/myapp.php", JSON_BODY.as_bytes());
    assert_eq!(
        url,
        format!("https://mycompany.com/myapp.php?bodySHA256={JSON_HASH}")
    );
    assert_eq!(
        validator().sign::<&str, &str>(&url, &[]),
        "y77kIzt2vzLz71DgmJGsen2scGs="
    );
    assert_eq!(
        validator().validate_json(&url, JSON_BODY.as_bytes(), "y77kIzt2vzLz71DgmJGsen2scGs="),
        Ok(())
    );
}

#[test]
fn reference_plain_http_without_port() {
    let url = "http://mycompany.com/myapp.php?foo=1&bar=2";
    assert_eq!(validator().sign(url, &p()), "OyGYPqTF6ztdbRNCvuQO/oPvqQ4=");
}

// ---- negative cases ----

#[test]
fn a_wrong_signature_is_rejected() {
    assert_eq!(
        validator().validate_form(U, &p(), "RSOYDt4T1cUTdK1PDd93/VVr8B9="),
        Err(SignatureError::Mismatch)
    );
    assert_eq!(
        validator().validate_form(U, &p(), ""),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_missing_signature_is_rejected() {
    assert_eq!(
        validator().validate_request(U, b"CallSid=CA1", None),
        Err(SignatureError::Missing)
    );
}

#[test]
fn a_wrong_auth_token_is_rejected() {
    let other = RequestValidator::new("54321");
    assert_eq!(
        other.validate_form(U, &p(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_json_body_without_body_hash_in_the_url_is_rejected() {
    let signature = validator().sign::<&str, &str>(U, &[]);
    assert_eq!(
        validator().validate_json(U, JSON_BODY.as_bytes(), &signature),
        Err(SignatureError::BodyHashMissing)
    );
}

#[test]
fn a_json_body_that_does_not_match_its_hash_is_rejected() {
    let url = url_with_body_hash(U, JSON_BODY.as_bytes());
    assert_eq!(
        validator().validate_json(
            &url,
            b"{\"property\": \"tampered\"}",
            "a9nBmqA0ju/hNViExpshrM61xv4="
        ),
        Err(SignatureError::BodyHashMismatch)
    );
}

#[test]
fn an_unexpected_extra_query_param_is_rejected() {
    let url = format!("{U}&somethingUnexpected=true");
    assert_eq!(
        validator().validate_form(&url, &p(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_tampered_param_is_rejected() {
    let mut params = p();
    params[2] = ("Digits", "9999");
    assert_eq!(
        validator().validate_form(U, &params, "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        Err(SignatureError::Mismatch)
    );
}

#[test]
fn a_relative_url_is_malformed() {
    assert_eq!(
        validator().validate_form("/myapp.php?foo=1", &p(), "RSOYDt4T1cUTdK1PDd93/VVr8B8="),
        Err(SignatureError::MalformedUrl)
    );
}

#[test]
fn validate_request_decodes_a_form_body() {
    let body = "CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
    assert_eq!(
        validator().validate_request(U, body.as_bytes(), Some("RSOYDt4T1cUTdK1PDd93/VVr8B8=")),
        Ok(())
    );
}

#[test]
fn ipv6_hosts_keep_their_brackets() {
    let url = "http://[::1]:8080/hook";
    let signature = validator().sign::<&str, &str>(url, &[("A", "b")]);
    assert_eq!(
        validator().validate_form(url, &[("A", "b")], &signature),
        Ok(())
    );
    let without = validator().sign::<&str, &str>("http://[::1]/hook", &[("A", "b")]);
    assert_eq!(
        validator().validate_form(url, &[("A", "b")], &without),
        Ok(())
    );
}

#[test]
fn debug_never_prints_the_token() {
    let printed = format!("{:?}", RequestValidator::new("super-secret-token"));
    assert!(!printed.contains("super-secret-token"), "{printed}");
}

proptest::proptest! {
    #[test]
    fn every_signature_we_make_validates(
        path in "/[a-z0-9/]{0,20}",
        params in proptest::collection::vec(("[A-Za-z.]{1,12}", "\\PC{0,20}"), 0..8),
    ) {
        let url = format!("https://example.test{path}");
        let signature = validator().sign(&url, &params);
        proptest::prop_assert_eq!(validator().validate_form(&url, &params, &signature), Ok(()));
    }

    #[test]
    fn validation_never_panics(url in "\\PC{0,60}", signature in "\\PC{0,40}", body in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
        let _ = validator().validate_request(&url, &body, Some(&signature));
    }
}
