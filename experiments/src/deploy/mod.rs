//! Beyond one machine: the container image of the `tandem` binary ([`image`]), the
//! Compose file of a cluster ([`compose`]), the containers' health check
//! ([`health`]), the Docker and Compose commands this machine offers ([`docker`]).
//!
//! Nothing here is pulled from a registry: the image is `FROM scratch` with the binary
//! and the shared libraries `ldd` names, so it builds on a machine with no registry.

pub mod compose;
pub mod docker;
pub mod health;
pub mod image;
