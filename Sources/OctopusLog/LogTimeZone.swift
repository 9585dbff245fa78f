import Foundation
import Synchronization
import OctopusConfig

/// The time zone a layout renders times in: the process's local zone, UTC, or an IANA zone.
public enum LogTimeZone: Sendable, Hashable, CustomStringConvertible {
    case local
    case utc
    case named(String)

    /// Parses `local`, `UTC`/`Z`/`GMT`, or an IANA identifier; `nil` for an unknown identifier.
    public init?(parsing text: String) {
        switch text.lowercased() {
        case "local", "": self = .local
        case "utc", "z", "gmt", "etc/utc": self = .utc
        default:
            guard TimeZone(identifier: text) != nil else { return nil }
            self = .named(text)
        }
    }

    public var description: String {
        switch self {
        case .local: "local"
        case .utc: "UTC"
        case .named(let name): name
        }
    }

    var foundationZone: TimeZone {
        switch self {
        case .local: TimeZone.current
        case .utc: TimeZone(identifier: "UTC") ?? TimeZone.current
        case .named(let name): TimeZone(identifier: name) ?? TimeZone.current
        }
    }
}

/// The UTC offset of a zone, cached per 15-minute slot in one atomic word so the hot path is a single load.
///
/// Zone transitions in the time zone database fall on quarter hours (in UTC) for every zone in use today, so
/// an offset computed for any instant of a slot holds for the whole slot.
final class ZoneOffsetCache: Sendable {
    private let zone: TimeZone?
    /// `slot << 24 | (offset + 2^23)`; 0 means empty.
    private let packed = Atomic<Int>(0)
    private static let slotSeconds: Int64 = 900

    init(_ timeZone: LogTimeZone) {
        self.zone = timeZone == .utc ? nil : timeZone.foundationZone
    }

    @inline(__always)
    func offset(at seconds: Int64) -> Int {
        guard let zone else { return 0 }
        let slot = Int(seconds >= 0 ? seconds / Self.slotSeconds : (seconds - Self.slotSeconds + 1) / Self.slotSeconds)
        let word = packed.load(ordering: .relaxed)
        if word != 0, word >> 24 == slot {
            return (word & 0xFF_FFFF) - (1 << 23)
        }
        let offset = zone.secondsFromGMT(for: Date(timeIntervalSince1970: TimeInterval(seconds)))
        packed.store(slot << 24 | (offset + (1 << 23)), ordering: .relaxed)
        return offset
    }
}

/// A wall-clock breakdown of a timestamp in some zone.
struct CivilTime {
    var year: Int
    var month: Int
    var day: Int
    var hour: Int
    var minute: Int
    var second: Int
    var millisecond: Int
    var offsetSeconds: Int

    init(_ timestamp: LogTimestamp, offsetSeconds: Int) {
        let fields = Civil.Fields(wall: timestamp.seconds + Int64(offsetSeconds))
        (year, month, day) = (fields.year, fields.month, fields.day)
        (hour, minute, second) = (fields.hour, fields.minute, fields.second)
        self.millisecond = timestamp.milliseconds
        self.offsetSeconds = offsetSeconds
    }
}
