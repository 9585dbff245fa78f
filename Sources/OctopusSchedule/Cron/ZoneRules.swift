import Foundation
import Synchronization

/// A zone's UTC offsets as a table of transitions, read once from the time zone database (1900–2200) and
/// shared by every expression in that zone, so finding the offset of an instant is a binary search, not a call
/// into Foundation. Outside the table the offsets at its ends hold.
final class ZoneRules: Sendable {
    /// Transition instants (seconds since 1970), ascending.
    private let instants: [Int64]
    /// `offsets[i]` holds from `instants[i - 1]` up to `instants[i]`; `offsets[0]` before the first transition.
    private let offsets: [Int32]
    let identifier: String

    /// A fixed-offset zone has no transitions.
    var isFixed: Bool { instants.isEmpty }

    private static let cache = Mutex<[String: ZoneRules]>([:])
    private static let tableStart: Int64 = -2_208_988_800  // 1900-01-01
    private static let tableEnd: Int64 = 7_258_118_400  // 2200-01-01

    /// The shared rules of `zone`.
    static func rules(for zone: TimeZone) -> ZoneRules {
        let key = zone.identifier
        if let found = cache.withLock({ $0[key] }) { return found }
        let made = ZoneRules(zone)
        return cache.withLock { cache in
            if let found = cache[key] { return found }
            cache[key] = made
            return made
        }
    }

    private init(_ zone: TimeZone) {
        identifier = zone.identifier
        var instants: [Int64] = []
        var offsets: [Int32] = [Int32(zone.secondsFromGMT(for: Date(timeIntervalSince1970: Double(Self.tableStart))))]
        var cursor = Date(timeIntervalSince1970: Double(Self.tableStart))
        while let next = zone.nextDaylightSavingTimeTransition(after: cursor), next.timeIntervalSince1970 < Double(Self.tableEnd) {
            let offset = Int32(zone.secondsFromGMT(for: next))
            // Some transitions change only the zone's name or its DST flag, not the offset: they do not matter here.
            if offset != offsets[offsets.count - 1] {
                instants.append(Int64(next.timeIntervalSince1970.rounded(.down)))
                offsets.append(offset)
            }
            cursor = next
        }
        self.instants = instants
        self.offsets = offsets
    }

    /// The index of the segment holding `instant`: the number of transitions at or before it.
    @inline(__always)
    private func segmentIndex(_ instant: Int64) -> Int {
        var low = 0
        var high = instants.count
        while low < high {
            let mid = (low + high) >> 1
            if instants[mid] <= instant { low = mid + 1 } else { high = mid }
        }
        return low
    }

    @inline(__always)
    func offset(at instant: Int64) -> Int64 {
        if instants.isEmpty { return Int64(offsets[0]) }
        return Int64(offsets[segmentIndex(instant)])
    }

    /// The span of constant offset holding `instant`: its start and end instants (nil: unbounded), its offset,
    /// and the offsets just before it and just after it.
    struct Segment {
        var start: Int64?
        var end: Int64?
        var offset: Int64
        var offsetBefore: Int64
        var offsetAfter: Int64
    }

    @inline(__always)
    func segment(at instant: Int64) -> Segment {
        if instants.isEmpty {
            let o = Int64(offsets[0])
            return Segment(start: nil, end: nil, offset: o, offsetBefore: o, offsetAfter: o)
        }
        let i = segmentIndex(instant)
        let o = Int64(offsets[i])
        return Segment(
            start: i > 0 ? instants[i - 1] : nil,
            end: i < instants.count ? instants[i] : nil,
            offset: o,
            offsetBefore: i > 0 ? Int64(offsets[i - 1]) : o,
            offsetAfter: i < instants.count ? Int64(offsets[i + 1]) : o
        )
    }
}
