//! The contracts' checked-in bytecode (`executor/contracts/build/*.bin`, hex, made
//! by `executor/contracts/compile.sh` with vyper 0.4.3 for Cancun), embedded in
//! the binary so neither a build nor CI needs the compiler. The test at the bottom
//! recompiles the sources and compares when `vyper` is on PATH.

use revm::primitives::hex;

/// The contracts under `executor/contracts/`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Contract {
    /// `Token.vy`: an ERC-20.
    Token,
    /// `Pair.vy`: a Uniswap-V2-style constant-product pair.
    Pair,
    /// `Lending.vy`: a lending market with a collateral check.
    Lending,
    /// `Staking.vy`: staking with a reward-per-share accumulator.
    Staking,
}

impl Contract {
    pub const ALL: [Contract; 4] = [
        Contract::Token,
        Contract::Pair,
        Contract::Lending,
        Contract::Staking,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Contract::Token => "Token",
            Contract::Pair => "Pair",
            Contract::Lending => "Lending",
            Contract::Staking => "Staking",
        }
    }

    fn deploy_hex(self) -> &'static str {
        match self {
            Contract::Token => include_str!("../../contracts/build/Token.bin"),
            Contract::Pair => include_str!("../../contracts/build/Pair.bin"),
            Contract::Lending => include_str!("../../contracts/build/Lending.bin"),
            Contract::Staking => include_str!("../../contracts/build/Staking.bin"),
        }
    }

    fn runtime_hex(self) -> &'static str {
        match self {
            Contract::Token => include_str!("../../contracts/build/Token.bin-runtime"),
            Contract::Pair => include_str!("../../contracts/build/Pair.bin-runtime"),
            Contract::Lending => include_str!("../../contracts/build/Lending.bin-runtime"),
            Contract::Staking => include_str!("../../contracts/build/Staking.bin-runtime"),
        }
    }

    /// The deploy (init) bytecode; constructor arguments are appended to it.
    pub fn deploy_code(self) -> Vec<u8> {
        hex::decode(self.deploy_hex().trim()).expect("checked-in bytecode is hex")
    }

    /// The runtime bytecode a deployment leaves at the contract's address.
    pub fn runtime_code(self) -> Vec<u8> {
        hex::decode(self.runtime_hex().trim()).expect("checked-in bytecode is hex")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;
    use std::process::Command;

    #[test]
    fn evm_contract_bytecode_is_valid_hex() {
        for c in Contract::ALL {
            assert!(
                c.deploy_code().len() > c.runtime_code().len(),
                "{}",
                c.name()
            );
        }
    }

    /// Recompiles `executor/contracts/*.vy` with `compile.sh` into a scratch folder
    /// and compares with the checked-in bytecode; skipped (saying so) without
    /// vyper 0.4.3 on PATH, so CI needs no compiler.
    #[test]
    fn evm_contracts_recompile_to_checked_in_bytecode() {
        let version = Command::new("vyper").arg("--version").output();
        let version = match version {
            Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).into_owned(),
            _ => {
                eprintln!(
                    "SKIPPED evm_contracts_recompile_to_checked_in_bytecode: no `vyper` on PATH (pip install vyper==0.4.3)"
                );
                return;
            }
        };
        if !version.starts_with("0.4.3") {
            eprintln!(
                "SKIPPED evm_contracts_recompile_to_checked_in_bytecode: vyper {} on PATH, the bytecode is from 0.4.3",
                version.trim()
            );
            return;
        }
        let contracts = Path::new(env!("CARGO_MANIFEST_DIR")).join("contracts");
        let out = std::env::temp_dir().join(format!("tandem-evm-contracts-{}", std::process::id()));
        let status = Command::new("sh")
            .arg(contracts.join("compile.sh"))
            .env("OUT", &out)
            .status()
            .expect("run compile.sh");
        assert!(status.success(), "compile.sh failed");
        for c in Contract::ALL {
            for (suffix, checked_in) in
                [(".bin", c.deploy_hex()), (".bin-runtime", c.runtime_hex())]
            {
                let file = out.join(format!("{}{suffix}", c.name()));
                let fresh = std::fs::read_to_string(&file).expect("compiled output");
                assert_eq!(
                    fresh.trim(),
                    checked_in.trim(),
                    "{}{suffix}: recompiled bytecode differs from executor/contracts/build; run executor/contracts/compile.sh",
                    c.name()
                );
            }
        }
        let _ = std::fs::remove_dir_all(&out);
    }
}
