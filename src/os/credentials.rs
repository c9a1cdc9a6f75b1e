//! Who the workers run as: the ids `user` and `group` resolve to, looked up
//! when the config is read (config/) and used after fork to drop privileges
//! (worker/setup.rs) and by the master to give the access log file to the
//! workers' user (obs/access_log).

/// Who the workers run as: `user` (with its supplementary groups) and
/// `group`, resolved when the config is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub name: Option<String>,
    pub uid: Option<nix::unistd::Uid>,
    pub gid: nix::unistd::Gid,
}
