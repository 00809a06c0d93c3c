//! Addresses the EVM workloads use: account `i` is `0x7a…00 ‖ i` (20 bytes, the
//! index big-endian in the last 8), far from the precompiles at `0x01…0x11`; the
//! deployer that creates and seeds the contracts at genesis is its own address.

use revm::primitives::Address;

/// The address that deploys the contracts at genesis and mints their tokens.
pub const DEPLOYER: Address = Address::new([
    0xde, 0xde, 0xde, 0xde, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
]);

/// The address of workload account `index`.
pub fn account_address(index: u64) -> Address {
    let mut bytes = [0u8; 20];
    bytes[0] = 0x7a;
    bytes[12..].copy_from_slice(&index.to_be_bytes());
    Address::new(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn evm_account_addresses_are_distinct_and_not_the_deployer() {
        assert_ne!(account_address(0), account_address(1));
        assert_ne!(account_address(0), DEPLOYER);
        assert_eq!(account_address(258).as_slice()[18..], [1, 2]);
    }
}
