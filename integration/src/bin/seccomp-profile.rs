//! `seccomp-profile PROFILE CONFIG`: puts an engine's seccomp profile
//! (docker/podman format), converted as `docker run` would for its default
//! capabilities, into a bundle's config.json, with those capabilities and
//! without no_new_privs. For the seccomp benchmark.

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        eprintln!("usage: seccomp-profile PROFILE CONFIG");
        std::process::exit(2);
    }
    let Some(seccomp) = estiba_integration::engine_profile_to_oci(
        std::path::Path::new(&args[1]),
        estiba_integration::DOCKER_CAPS,
    ) else {
        eprintln!("cannot read profile {}", args[1]);
        std::process::exit(1);
    };
    let text = std::fs::read(&args[2]).expect("read config");
    let mut config: serde_json::Value = serde_json::from_slice(&text).expect("config is JSON");
    config["linux"]["seccomp"] = seccomp;
    let caps = serde_json::json!(estiba_integration::DOCKER_CAPS);
    config["process"]["capabilities"] =
        serde_json::json!({"bounding": caps, "effective": caps, "permitted": caps});
    config["process"]["noNewPrivileges"] = serde_json::json!(false);
    std::fs::write(&args[2], serde_json::to_vec_pretty(&config).unwrap()).expect("write config");
}
