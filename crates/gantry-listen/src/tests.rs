use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use crate::{Admission, FdBudget, Limits, Refused};

const A: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

fn admission(max_connections: usize, max_per_address: usize, budget: usize) -> Admission {
    Admission::new(
        Limits {
            max_connections,
            max_per_address,
        },
        FdBudget::with_capacity(budget),
    )
}

#[test]
fn one_address_cannot_take_the_places_of_others() {
    let admission = admission(10, 2, 100);
    let _a1 = admission.admit(A).unwrap();
    let _a2 = admission.admit(A).unwrap();
    assert_eq!(admission.admit(A).unwrap_err(), Refused::AddressFull(2));
    let _b1 = admission.admit(B).unwrap();
    assert_eq!(admission.open_connections(), 3);
}

#[test]
fn the_listener_cap_holds_across_addresses() {
    let admission = admission(2, 10, 100);
    let _a = admission.admit(A).unwrap();
    let _b = admission.admit(B).unwrap();
    assert_eq!(admission.admit(B).unwrap_err(), Refused::ListenerFull(2));
}

#[test]
fn a_dropped_permit_frees_its_place() {
    let admission = admission(1, 1, 100);
    let first = admission.admit(A).unwrap();
    assert!(admission.admit(A).is_err());
    drop(first);
    assert!(admission.admit(A).is_ok());
    assert_eq!(admission.open_connections(), 0);
}

#[test]
fn listeners_of_one_process_share_its_descriptor_budget() {
    let budget = FdBudget::with_capacity(2);
    let api = Admission::new(Limits::default(), budget.clone());
    let lb = Admission::new(Limits::default(), budget.clone());
    let _one = api.admit(A).unwrap();
    let two = lb.admit(B).unwrap();
    assert_eq!(api.admit(B).unwrap_err(), Refused::ProcessFull);
    drop(two);
    let _three = api.admit(B).unwrap();
    assert_eq!(budget.in_use(), 2);
}

#[test]
fn ipv4_mapped_addresses_count_as_their_ipv4_address() {
    let admission = admission(10, 1, 100);
    let _a = admission.admit(A).unwrap();
    let mapped = IpAddr::V6(Ipv4Addr::new(127, 0, 0, 1).to_ipv6_mapped());
    assert_eq!(
        admission.admit(mapped).unwrap_err(),
        Refused::AddressFull(1)
    );
    assert!(admission.admit(IpAddr::V6(Ipv6Addr::LOCALHOST)).is_ok());
}

#[test]
fn the_budget_leaves_the_reserve_free() {
    assert_eq!(FdBudget::new(1024, 256).capacity(), 768);
    assert_eq!(FdBudget::new(100, 256).capacity(), 1);
}

#[test]
fn raising_the_limit_reaches_the_hard_limit() {
    let soft = crate::raise_fd_limit().unwrap();
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the struct passed.
    assert_eq!(
        unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) },
        0
    );
    assert_eq!(soft, limit.rlim_cur);
    assert_eq!(limit.rlim_cur, limit.rlim_max);
}
