/// `schema.graphql` is the SDL the code generates; regenerate it with
/// `cargo run -- schema > schema.graphql`.
#[test]
fn schema_graphql_matches_the_code() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_triage")).arg("schema").output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let generated = String::from_utf8(output.stdout).unwrap();
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/schema.graphql")).unwrap();
    assert!(
        generated == committed,
        "schema.graphql is stale: run `cargo run -- schema > schema.graphql` and commit it"
    );
    assert_eq!(generated, triage::graphql::sdl());
}
