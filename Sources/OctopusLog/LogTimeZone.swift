import Foundation
import Synchronization

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
        let local = timestamp.seconds + Int64(offsetSeconds)
        var days = local / 86_400
        var secondOfDay = local % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        // Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's civil_from_days).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        self.year = Int(yoe + era * 400 + (m <= 2 ? 1 : 0))
        self.month = Int(m)
        self.day = Int(d)
        self.hour = Int(secondOfDay / 3600)
        self.minute = Int(secondOfDay % 3600 / 60)
        self.second = Int(secondOfDay % 60)
        self.millisecond = timestamp.milliseconds
        self.offsetSeconds = offsetSeconds
    }
}
