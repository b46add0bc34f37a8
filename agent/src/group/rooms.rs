//! Assignment of a group's MUC rooms to its bots.
//!
//! The mapping depends only on the bot's global index and the group's room
//! settings, so every agent computes the same rooms for the same bot, and a
//! group split over several agents fills its rooms as one group would.

/// Rule that spreads bots over the rooms of a group.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum RoomDistribution {
    /// Bot i's first room is i mod rooms, so room sizes differ by at most one.
    Uniform,
    /// Room r is drawn with weight 1 / (r + 1)^exponent.
    Zipf { exponent: f64 },
}

/// The rooms of one group and the rule that assigns them to bots.
#[derive(Debug, Clone)]
pub struct RoomMap {
    /// Bare JIDs, indexed by room number.
    rooms: Vec<String>,
    rooms_per_bot: usize,
    distribution: RoomDistribution,
    /// Cumulative Zipf weights normalised to end at 1; empty for uniform.
    cumulative: Vec<f64>,
}

impl RoomMap {
    /// Builds the map; the caller has checked that `base` is a bare JID,
    /// `rooms >= 1` and `1 <= rooms_per_bot <= rooms`.
    pub fn new(
        base: &str,
        rooms: u32,
        rooms_per_bot: u32,
        distribution: RoomDistribution,
    ) -> RoomMap {
        let names = room_names(base, rooms);
        let cumulative = match distribution {
            RoomDistribution::Uniform => Vec::new(),
            RoomDistribution::Zipf { exponent } => zipf_cumulative(names.len(), exponent),
        };
        RoomMap {
            rooms: names,
            rooms_per_bot: rooms_per_bot as usize,
            distribution,
            cumulative,
        }
    }

    /// Number of rooms in the group.
    pub fn len(&self) -> usize {
        self.rooms.len()
    }

    /// Always false: a group has at least one room.
    pub fn is_empty(&self) -> bool {
        self.rooms.is_empty()
    }

    /// Bare JID of room number `room`.
    pub fn name(&self, room: usize) -> &str {
        &self.rooms[room]
    }

    /// Room numbers of the bot with this global index, distinct, first room
    /// first.
    pub fn rooms_of(&self, global_index: u32) -> Vec<usize> {
        let count = self.rooms.len();
        let first = match self.distribution {
            RoomDistribution::Uniform => global_index as usize % count,
            RoomDistribution::Zipf { .. } => self.draw_zipf(global_index, 0),
        };
        let mut chosen = vec![first];

        // Further rooms: uniform bots take the next rooms in order; Zipf bots
        // draw again, and after a bounded number of repeats take the next
        // free room so that the loop always ends.
        const MAX_DRAWS: u32 = 64;
        let mut draw = 1;
        while chosen.len() < self.rooms_per_bot {
            let candidate = match self.distribution {
                RoomDistribution::Uniform => (first + chosen.len()) % count,
                RoomDistribution::Zipf { .. } if draw < MAX_DRAWS => {
                    let room = self.draw_zipf(global_index, draw);
                    draw += 1;
                    room
                }
                RoomDistribution::Zipf { .. } => (0..count)
                    .map(|step| (first + step) % count)
                    .find(|room| !chosen.contains(room))
                    .unwrap_or(first),
            };
            if !chosen.contains(&candidate) {
                chosen.push(candidate);
            }
        }
        chosen
    }

    /// Room number for one draw: the inverse of the cumulative weights at a
    /// uniform number derived from the index and the draw.
    fn draw_zipf(&self, global_index: u32, draw: u32) -> usize {
        let seed = (u64::from(global_index) << 32) | u64::from(draw);
        let uniform = unit_interval(splitmix64(seed));
        let room = self.cumulative.partition_point(|&edge| edge <= uniform);
        room.min(self.rooms.len() - 1)
    }
}

/// Room JIDs: `base` itself for one room, else `local-r@domain` for r from 0.
fn room_names(base: &str, rooms: u32) -> Vec<String> {
    if rooms <= 1 {
        return vec![base.to_owned()];
    }
    let (local, domain) = base.split_once('@').unwrap_or((base, ""));
    (0..rooms)
        .map(|room| format!("{local}-{room}@{domain}"))
        .collect()
}

fn zipf_cumulative(rooms: usize, exponent: f64) -> Vec<f64> {
    let weights: Vec<f64> = (1..=rooms)
        .map(|rank| (rank as f64).powf(-exponent))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut running = 0.0;
    weights
        .iter()
        .map(|weight| {
            running += weight / total;
            running
        })
        .collect()
}

/// SplitMix64 (Steele, Lea and Flood, 2014): a fixed, well-mixed hash, so
/// that the rooms of a bot never change between agents or versions.
fn splitmix64(seed: u64) -> u64 {
    let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Maps 64 random bits to [0, 1) using the top 53 bits.
fn unit_interval(bits: u64) -> f64 {
    (bits >> 11) as f64 / (1u64 << 53) as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(map: &RoomMap, bots: u32) -> Vec<usize> {
        let mut sizes = vec![0; map.len()];
        for index in 0..bots {
            for room in map.rooms_of(index) {
                sizes[room] += 1;
            }
        }
        sizes
    }

    /// One room keeps the configured JID unchanged.
    #[test]
    fn single_room_keeps_name() {
        let map = RoomMap::new("lobby@muc.example", 1, 1, RoomDistribution::Uniform);
        assert_eq!(map.len(), 1);
        assert_eq!(map.name(0), "lobby@muc.example");
        assert_eq!(map.rooms_of(7), [0]);
    }

    /// Several rooms are numbered after the configured local part.
    #[test]
    fn rooms_are_numbered() {
        let map = RoomMap::new("lobby@muc.example", 3, 1, RoomDistribution::Uniform);
        assert_eq!(map.name(0), "lobby-0@muc.example");
        assert_eq!(map.name(2), "lobby-2@muc.example");
    }

    /// Uniform rooms differ in size by at most one bot.
    #[test]
    fn uniform_sizes_balance() {
        let map = RoomMap::new("r@m", 7, 1, RoomDistribution::Uniform);
        let sizes = sizes(&map, 100);
        assert_eq!(sizes.iter().sum::<usize>(), 100);
        assert!(
            sizes.iter().all(|&size| size == 14 || size == 15),
            "{sizes:?}"
        );
    }

    /// Bots in several rooms get distinct rooms, and every room is filled evenly.
    #[test]
    fn uniform_several_rooms_per_bot() {
        let map = RoomMap::new("r@m", 4, 3, RoomDistribution::Uniform);
        assert_eq!(map.rooms_of(2), [2, 3, 0]);
        assert_eq!(sizes(&map, 8), [6, 6, 6, 6]);
    }

    /// Zipf puts more bots in low-numbered rooms, close to the weights.
    #[test]
    fn zipf_follows_weights() {
        let map = RoomMap::new("r@m", 10, 1, RoomDistribution::Zipf { exponent: 1.0 });
        let bots = 20_000;
        let sizes = sizes(&map, bots);
        assert_eq!(sizes.iter().sum::<usize>(), bots as usize);
        // Weight of room 0 is 1 / H(10) = 0.3414; room 9 gets a tenth of that.
        let share0 = sizes[0] as f64 / f64::from(bots);
        let share9 = sizes[9] as f64 / f64::from(bots);
        assert!((share0 - 0.3414).abs() < 0.02, "room 0 share {share0}");
        assert!((share9 - 0.0341).abs() < 0.01, "room 9 share {share9}");
        assert!(sizes[0] > sizes[1], "{sizes:?}");
        assert!(sizes[1] > sizes[4], "{sizes:?}");
    }

    /// Zipf bots in several rooms get distinct rooms, even when all rooms are asked.
    #[test]
    fn zipf_rooms_distinct() {
        let map = RoomMap::new("r@m", 5, 5, RoomDistribution::Zipf { exponent: 2.0 });
        for index in 0..200 {
            let mut rooms = map.rooms_of(index);
            rooms.sort_unstable();
            assert_eq!(rooms, [0, 1, 2, 3, 4], "bot {index}");
        }
    }

    /// The mapping depends only on the index, so two maps agree.
    #[test]
    fn mapping_is_deterministic() {
        let a = RoomMap::new("r@m", 50, 2, RoomDistribution::Zipf { exponent: 1.2 });
        let b = RoomMap::new("r@m", 50, 2, RoomDistribution::Zipf { exponent: 1.2 });
        for index in [0, 1, 999, u32::MAX] {
            assert_eq!(a.rooms_of(index), b.rooms_of(index));
        }
        // Fixed values guard against an accidental change of the hash.
        assert_eq!(splitmix64(0), 0xe220_a839_7b1d_cdaf);
    }
}
