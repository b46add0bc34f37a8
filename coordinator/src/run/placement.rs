//! Splitting a group's bots over the agents by capacity or by weight.
//!
//! Each agent gets a share proportional to its weight: the scenario's
//! `[agents] weights`, or else its CPU cores, because bots cost an agent
//! mostly CPU. No agent gets more than it can hold: its `--max-bots` minus
//! the bots it already runs, its open-file soft limit minus its reserve,
//! and its local ports times its source addresses. What an agent cannot
//! hold goes to the others by weight. A group that does not fit at all is
//! rejected before any bot starts.
//!
//! The global indices are then dealt out so that each agent's bots are
//! spread evenly over the arrival order, which keeps every agent's
//! arrival rate at its share of the group's.

use crate::results::run_info::PeerInfo;

/// Bots one agent can hold, and the resource that sets that number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AgentCapacity {
    pub bots: u64,
    /// `max-bots`, `descriptors` or `ports`.
    pub resource: &'static str,
}

impl AgentCapacity {
    /// Capacity from what the agent reported in `Hello`. Unknown limits
    /// (reported as 0) do not cap; an agent that reports no `max_bots`
    /// predates these fields and is taken as unlimited.
    pub fn of(agent: &PeerInfo) -> AgentCapacity {
        let mut capacity = AgentCapacity {
            bots: u64::MAX,
            resource: "max-bots",
        };
        let mut cap = |bots: u64, resource| {
            if bots < capacity.bots {
                capacity = AgentCapacity { bots, resource };
            }
        };
        if agent.max_bots > 0 {
            cap(
                u64::from(agent.max_bots.saturating_sub(agent.running_bots)),
                "max-bots",
            );
        }
        if agent.fd_limit > 0 {
            let held = u64::from(agent.running_bots) + u64::from(agent.reserved_descriptors);
            cap(agent.fd_limit.saturating_sub(held), "descriptors");
        }
        if agent.ports_per_destination > 0 {
            let sources = agent.source_addresses.len().max(1) as u64;
            let ports = agent.ports_per_destination.saturating_mul(sources);
            cap(ports.saturating_sub(u64::from(agent.running_bots)), "ports");
        }
        capacity
    }
}

/// Bots given to one agent and why that many.
#[derive(Debug, Clone, PartialEq)]
pub struct Share {
    pub bots: u32,
    /// `bots` over the group's bots.
    pub fraction: f64,
    /// `weight`, `cores`, or the capacity resource that capped the agent.
    pub limit: &'static str,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PlacementError {
    #[error(
        "group {group}: {bots} bots do not fit on the agents, which can hold {capacity} together ({details}); add agents, raise their limits, or lower `bots`"
    )]
    DoesNotFit {
        group: String,
        bots: u32,
        capacity: u64,
        /// One `agent: N (resource)` entry per agent.
        details: String,
    },
    #[error(
        "group {group}: agent {agent} would connect {rate:.1} bots/s (join_rate {join_rate} times its share {fraction:.3}), above its --max-connect-rate of {limit}; lower join_rate, add agents, or restart that agent with a higher --max-connect-rate"
    )]
    TooFast {
        group: String,
        agent: String,
        rate: f64,
        join_rate: f64,
        fraction: f64,
        limit: f64,
    },
}

/// Checks each agent's share of a group's arrivals against the agent's
/// `--max-connect-rate`, so that the run stops before it starts rather than
/// when the group reaches that agent.
pub fn check_connect_rates(
    group: &str,
    join_rate: f64,
    shares: &[Share],
    agents: &[PeerInfo],
) -> Result<(), PlacementError> {
    for (share, agent) in shares.iter().zip(agents) {
        let rate = join_rate * share.fraction;
        // Agents that predate the field report 0. They still check the rate
        // themselves when the group starts.
        if agent.max_connect_rate > 0.0 && rate > agent.max_connect_rate {
            return Err(PlacementError::TooFast {
                group: group.to_string(),
                agent: agent.name.clone(),
                rate,
                join_rate,
                fraction: share.fraction,
                limit: agent.max_connect_rate,
            });
        }
    }
    Ok(())
}

/// Splits `bots` over agents with these weights and capacities. The
/// shares add up to `bots` exactly; `weight_label` names the weights in
/// the result (`weight` or `cores`).
pub fn split(
    bots: u32,
    weights: &[f64],
    capacities: &[AgentCapacity],
    weight_label: &'static str,
) -> Option<Vec<Share>> {
    let total_capacity: u64 = capacities
        .iter()
        .map(|c| c.bots)
        .fold(0, u64::saturating_add);
    if total_capacity < u64::from(bots) {
        return None;
    }
    let mut counts = vec![0u64; weights.len()];
    let mut capped = vec![false; weights.len()];
    let mut remaining = u64::from(bots);

    // Water filling: each open agent gets its weighted part of what is
    // left. An agent whose part reaches its capacity is filled and closed,
    // and the rest is split again. Each pass closes an agent or ends.
    for _ in 0..=weights.len() {
        let open: Vec<usize> = (0..weights.len())
            .filter(|&i| !capped[i] && weights[i] > 0.0)
            .collect();
        let weight_sum: f64 = open.iter().map(|&i| weights[i]).sum();
        let mut closed_any = false;
        for &i in &open {
            let ideal = remaining as f64 * weights[i] / weight_sum;
            if ideal >= capacities[i].bots as f64 {
                counts[i] = capacities[i].bots;
                capped[i] = true;
                closed_any = true;
            }
        }
        if closed_any {
            let given: u64 = (0..weights.len())
                .filter(|&i| capped[i])
                .map(|i| counts[i])
                .sum();
            remaining = u64::from(bots) - given.min(u64::from(bots));
            continue;
        }
        if !open.is_empty() {
            largest_remainder(remaining, &open, weights, &mut counts);
            remaining = 0;
        }
        break;
    }

    // Weightless agents absorb what the weighted ones could not hold.
    for i in 0..weights.len() {
        if remaining == 0 {
            break;
        }
        let room = capacities[i].bots - counts[i];
        let extra = room.min(remaining);
        counts[i] += extra;
        remaining -= extra;
        if extra > 0 {
            capped[i] = counts[i] == capacities[i].bots;
        }
    }
    if remaining > 0 {
        return None;
    }

    Some(
        counts
            .iter()
            .zip(&capped)
            .zip(capacities)
            .map(|((&count, &capped), capacity)| Share {
                bots: count as u32,
                fraction: if bots == 0 {
                    0.0
                } else {
                    count as f64 / f64::from(bots)
                },
                limit: if capped {
                    capacity.resource
                } else {
                    weight_label
                },
            })
            .collect(),
    )
}

/// Gives `total` to the `open` agents by weight: whole parts first, then
/// one each by the largest fractional part, ties to the earlier agent.
fn largest_remainder(total: u64, open: &[usize], weights: &[f64], counts: &mut [u64]) {
    if open.is_empty() {
        return;
    }
    let weight_sum: f64 = open.iter().map(|&i| weights[i]).sum();
    let mut fractions = Vec::with_capacity(open.len());
    let mut given = 0;
    for &i in open {
        let ideal = total as f64 * weights[i] / weight_sum;
        let whole = (ideal.floor() as u64).min(total - given);
        counts[i] = whole;
        given += whole;
        fractions.push((ideal - whole as f64, i));
    }
    fractions.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (_, i) in fractions.iter().cycle().take((total - given) as usize) {
        counts[*i] += 1;
    }
}

/// Places one group: shares by `weights` (or by cores when `None`), capped
/// by what each agent reported.
pub fn place(
    group: &str,
    bots: u32,
    agents: &[PeerInfo],
    weights: Option<&[f64]>,
) -> Result<Vec<Share>, PlacementError> {
    let capacities: Vec<AgentCapacity> = agents.iter().map(AgentCapacity::of).collect();
    let (weights, label) = match weights {
        Some(weights) => (weights.to_vec(), "weight"),
        None => (
            agents
                .iter()
                .map(|agent| f64::from(agent.cores.max(1)))
                .collect(),
            "cores",
        ),
    };
    split(bots, &weights, &capacities, label).ok_or_else(|| PlacementError::DoesNotFit {
        group: group.to_string(),
        bots,
        capacity: capacities
            .iter()
            .map(|c| c.bots)
            .fold(0, u64::saturating_add),
        details: agents
            .iter()
            .zip(&capacities)
            .map(|(agent, capacity)| {
                format!("{}: {} ({})", agent.name, capacity.bots, capacity.resource)
            })
            .collect::<Vec<_>>()
            .join(", "),
    })
}

/// Global bot indices of one agent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Indices {
    /// `offset + k * stride` for k < count.
    Progression {
        offset: u32,
        stride: u32,
        count: u32,
    },
    /// Any other set, listed.
    List(Vec<u32>),
}

impl Indices {
    pub fn count(&self) -> u32 {
        match self {
            Indices::Progression { count, .. } => *count,
            Indices::List(indices) => indices.len() as u32,
        }
    }
}

/// Deals indices 0..total to agents with these counts: index i goes to the
/// agent furthest behind its proportional quota after i + 1 bots. Equal
/// counts give plain round robin, which is sent as a progression.
pub fn deal(counts: &[u32]) -> Vec<Indices> {
    let total: u64 = counts.iter().map(|&c| u64::from(c)).sum();
    let mut dealt: Vec<Vec<u32>> = counts
        .iter()
        .map(|&c| Vec::with_capacity(c as usize))
        .collect();
    for index in 0..total {
        // The quota of agent a after index + 1 bots is
        // counts[a] * (index + 1) / total. Lags are compared multiplied by
        // total, so the arithmetic stays in integers.
        let behind = |a: usize| {
            i128::from(counts[a]) * i128::from(index + 1)
                - dealt[a].len() as i128 * i128::from(total)
        };
        let chosen = (0..counts.len())
            .filter(|&a| (dealt[a].len() as u32) < counts[a])
            .max_by(|&a, &b| behind(a).cmp(&behind(b)).then(b.cmp(&a)));
        if let Some(agent) = chosen {
            dealt[agent].push(index as u32);
        }
    }
    dealt.into_iter().map(compress).collect()
}

/// Sends evenly spaced indices as a progression, and others as a list.
fn compress(indices: Vec<u32>) -> Indices {
    match indices.as_slice() {
        [] => Indices::Progression {
            offset: 0,
            stride: 1,
            count: 0,
        },
        [only] => Indices::Progression {
            offset: *only,
            stride: 1,
            count: 1,
        },
        [first, second, ..] => {
            let stride = second - first;
            let even = indices.windows(2).all(|pair| pair[1] - pair[0] == stride);
            if even {
                Indices::Progression {
                    offset: *first,
                    stride,
                    count: indices.len() as u32,
                }
            } else {
                Indices::List(indices)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unlimited(agents: usize) -> Vec<AgentCapacity> {
        vec![
            AgentCapacity {
                bots: u64::MAX,
                resource: "max-bots",
            };
            agents
        ]
    }

    fn bots(shares: &[Share]) -> Vec<u32> {
        shares.iter().map(|share| share.bots).collect()
    }

    /// Equal weights split evenly, the remainder to the earlier agents.
    #[test]
    fn equal_weights_split_evenly() {
        let shares = split(10, &[1.0, 1.0, 1.0], &unlimited(3), "cores").unwrap();
        assert_eq!(bots(&shares), [4, 3, 3]);
        assert!(shares.iter().all(|share| share.limit == "cores"));
        assert!((shares[0].fraction - 0.4).abs() < 1e-9);
    }

    /// Weights set the proportions, and rounding keeps the exact total.
    #[test]
    fn weights_round_to_exact_total() {
        let shares = split(1000, &[3.0, 1.0], &unlimited(2), "weight").unwrap();
        assert_eq!(bots(&shares), [750, 250]);
        for bots_total in [1, 7, 99, 10_001] {
            let shares = split(bots_total, &[1.0, 2.0, 4.0], &unlimited(3), "weight").unwrap();
            assert_eq!(
                shares.iter().map(|s| s.bots).sum::<u32>(),
                bots_total,
                "{bots_total}"
            );
        }
        let thirds = split(100, &[1.0, 1.0, 1.0], &unlimited(3), "weight").unwrap();
        assert_eq!(bots(&thirds), [34, 33, 33]);
    }

    /// A zero weight gets nothing while the others have room.
    #[test]
    fn zero_weight_gets_nothing() {
        let shares = split(10, &[0.0, 1.0], &unlimited(2), "weight").unwrap();
        assert_eq!(bots(&shares), [0, 10]);
    }

    /// A capped agent is filled to its capacity and the rest goes to the others.
    #[test]
    fn caps_move_bots_to_others() {
        let capacities = [
            AgentCapacity {
                bots: 100,
                resource: "descriptors",
            },
            AgentCapacity {
                bots: 10_000,
                resource: "max-bots",
            },
            AgentCapacity {
                bots: 10_000,
                resource: "max-bots",
            },
        ];
        let shares = split(1000, &[1.0, 1.0, 1.0], &capacities, "cores").unwrap();
        assert_eq!(bots(&shares), [100, 450, 450]);
        assert_eq!(shares[0].limit, "descriptors");
        assert_eq!(shares[1].limit, "cores");
    }

    /// When weighted agents are full, a zero-weight agent takes the rest.
    #[test]
    fn weightless_agent_absorbs_overflow() {
        let capacities = [
            AgentCapacity {
                bots: 5,
                resource: "ports",
            },
            AgentCapacity {
                bots: 100,
                resource: "max-bots",
            },
        ];
        let shares = split(8, &[1.0, 0.0], &capacities, "weight").unwrap();
        assert_eq!(bots(&shares), [5, 3]);
        assert_eq!(shares[0].limit, "ports");
    }

    /// More bots than all capacities together cannot be placed.
    #[test]
    fn too_many_bots_fail() {
        let capacities = [
            AgentCapacity {
                bots: 5,
                resource: "ports",
            },
            AgentCapacity {
                bots: 4,
                resource: "descriptors",
            },
        ];
        assert!(split(10, &[1.0, 1.0], &capacities, "cores").is_none());
        assert_eq!(
            bots(&split(9, &[1.0, 1.0], &capacities, "cores").unwrap()),
            [5, 4]
        );
    }

    /// Capacity comes from the smallest reported limit, counting running bots.
    #[test]
    fn capacity_takes_smallest_limit() {
        let mut agent = PeerInfo {
            name: "a".to_string(),
            address: "http://127.0.0.1:1".to_string(),
            version: "0".to_string(),
            cores: 2,
            fd_limit: 1024,
            source_addresses: Vec::new(),
            ports_per_destination: 28_232,
            max_bots: 20_000,
            running_bots: 100,
            reserved_descriptors: 64,
            max_connect_rate: 0.0,
            clock_offset_micros: 0,
            clock_uncertainty_micros: 0,
        };
        assert_eq!(
            AgentCapacity::of(&agent),
            AgentCapacity {
                bots: 860,
                resource: "descriptors"
            }
        );
        agent.fd_limit = 1_000_000;
        agent.max_bots = 50_000;
        assert_eq!(AgentCapacity::of(&agent).resource, "ports");
        assert_eq!(AgentCapacity::of(&agent).bots, 28_132);
        agent.source_addresses = vec!["127.0.0.2".to_string(), "127.0.0.3".to_string()];
        assert_eq!(
            AgentCapacity::of(&agent),
            AgentCapacity {
                bots: 49_900,
                resource: "max-bots"
            }
        );
    }

    /// The rejection names the group, the numbers and each agent's limit.
    #[test]
    fn place_rejects_with_numbers() {
        let agent = PeerInfo {
            name: "small".to_string(),
            address: "http://127.0.0.1:1".to_string(),
            version: "0".to_string(),
            cores: 1,
            fd_limit: 164,
            source_addresses: Vec::new(),
            ports_per_destination: 0,
            max_bots: 20_000,
            running_bots: 0,
            reserved_descriptors: 64,
            max_connect_rate: 0.0,
            clock_offset_micros: 0,
            clock_uncertainty_micros: 0,
        };
        let err = place("crowd", 150, &[agent], None).unwrap_err().to_string();
        assert!(err.contains("group crowd: 150 bots"), "{err}");
        assert!(err.contains("can hold 100"), "{err}");
        assert!(err.contains("small: 100 (descriptors)"), "{err}");
    }

    /// A share whose arrival rate exceeds the agent's limit is rejected with
    /// the numbers. An agent with no reported limit is not checked.
    #[test]
    fn connect_rate_checked_per_agent() {
        let mut fast = PeerInfo {
            name: "fast".to_string(),
            address: "http://127.0.0.1:1".to_string(),
            version: "0".to_string(),
            cores: 1,
            fd_limit: 0,
            source_addresses: Vec::new(),
            ports_per_destination: 0,
            max_bots: 0,
            running_bots: 0,
            reserved_descriptors: 0,
            max_connect_rate: 100.0,
            clock_offset_micros: 0,
            clock_uncertainty_micros: 0,
        };
        let mut slow = fast.clone();
        slow.name = "slow".to_string();
        slow.max_connect_rate = 20.0;
        let agents = [fast.clone(), slow];
        let shares = place("g", 100, &agents, None).unwrap();

        assert!(check_connect_rates("g", 40.0, &shares, &agents).is_ok());
        let err = check_connect_rates("g", 50.0, &shares, &agents)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("agent slow would connect 25.0 bots/s"),
            "{err}"
        );
        assert!(err.contains("--max-connect-rate of 20"), "{err}");

        fast.max_connect_rate = 0.0;
        let unknown = [fast.clone(), fast];
        assert!(check_connect_rates("g", 1000.0, &shares, &unknown).is_ok());
    }

    /// Dealing covers every index once and keeps equal counts round robin.
    #[test]
    fn deal_interleaves_by_count() {
        assert_eq!(
            deal(&[3, 2]),
            [
                Indices::Progression {
                    offset: 0,
                    stride: 2,
                    count: 3
                },
                Indices::Progression {
                    offset: 1,
                    stride: 2,
                    count: 2
                }
            ]
        );
        let dealt = deal(&[6, 3, 0]);
        assert_eq!(dealt[0], Indices::List(vec![0, 2, 3, 5, 6, 8]));
        assert_eq!(
            dealt[1],
            Indices::Progression {
                offset: 1,
                stride: 3,
                count: 3
            }
        );
        assert_eq!(dealt[2].count(), 0);

        let dealt = deal(&[500, 300, 200]);
        let mut all: Vec<u32> = dealt
            .iter()
            .flat_map(|indices| match indices {
                Indices::List(list) => list.clone(),
                Indices::Progression {
                    offset,
                    stride,
                    count,
                } => (0..*count).map(|k| offset + k * stride).collect(),
            })
            .collect();
        all.sort_unstable();
        assert_eq!(all, (0..1000).collect::<Vec<_>>());
        // Each agent's share of the first 100 arrivals matches its share.
        let early = |indices: &Indices| match indices {
            Indices::List(list) => list.iter().filter(|&&i| i < 100).count(),
            Indices::Progression { .. } => 0,
        };
        assert_eq!(early(&dealt[0]), 50);
        assert_eq!(early(&dealt[1]), 30);
    }
}
