# pragma version ==0.4.3
# @license MIT OR Apache-2.0
"""
@title Lending
@notice A one-market lending pool: users deposit a collateral token and borrow
        a loan token against it, priced 1:1. A borrow or a withdrawal is refused
        unless afterwards debt * 10000 <= collateral * collateral_factor_bps
        (the collateral check). The market's loan-token liquidity is minted to
        it at genesis; total_collateral and total_borrows are the market-wide
        counters every operation updates (the contended slots).
"""

interface ERC20:
    def transfer(receiver: address, amount: uint256) -> bool: nonpayable
    def transferFrom(sender: address, receiver: address, amount: uint256) -> bool: nonpayable

event Borrow:
    borrower: indexed(address)
    amount: uint256

BPS: constant(uint256) = 10000

collateral_token: public(address)
loan_token: public(address)
collateral_factor_bps: public(uint256)
collateral: public(HashMap[address, uint256])
debt: public(HashMap[address, uint256])
total_collateral: public(uint256)
total_borrows: public(uint256)


@deploy
def __init__(collateral_token: address, loan_token: address, collateral_factor_bps: uint256):
    assert collateral_factor_bps <= BPS, "factor above 100%"
    self.collateral_token = collateral_token
    self.loan_token = loan_token
    self.collateral_factor_bps = collateral_factor_bps


@view
@internal
def _healthy(user: address) -> bool:
    return self.debt[user] * BPS <= self.collateral[user] * self.collateral_factor_bps


@external
def deposit(amount: uint256):
    assert extcall ERC20(self.collateral_token).transferFrom(msg.sender, self, amount)
    self.collateral[msg.sender] += amount
    self.total_collateral += amount


@external
def withdraw(amount: uint256):
    self.collateral[msg.sender] -= amount
    self.total_collateral -= amount
    assert self._healthy(msg.sender), "collateral check"
    assert extcall ERC20(self.collateral_token).transfer(msg.sender, amount)


@external
def borrow(amount: uint256):
    self.debt[msg.sender] += amount
    self.total_borrows += amount
    assert self._healthy(msg.sender), "collateral check"
    assert extcall ERC20(self.loan_token).transfer(msg.sender, amount)
    log Borrow(borrower=msg.sender, amount=amount)


@external
def repay(amount: uint256):
    assert extcall ERC20(self.loan_token).transferFrom(msg.sender, self, amount)
    self.debt[msg.sender] -= amount
    self.total_borrows -= amount
