/// Proleptic Gregorian calendar arithmetic on wall-clock seconds (seconds since 1970-01-01T00:00:00 of the wall
/// clock, whatever the zone): the cron search and the log rooms' date rendering and periods run on these, and a
/// zone's offsets turn them into instants. Here, in the lowest room, so that both use one copy (package-only).
package enum Civil {
    /// Days since 1970-01-01 of a date (Howard Hinnant's days_from_civil).
    @inlinable
    package static func days(year: Int, month: Int, day: Int) -> Int64 {
        let y = Int64(month <= 2 ? year - 1 : year)
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let m = Int64(month)
        let doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + Int64(day) - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// The date of a day count since 1970-01-01.
    @inlinable
    package static func date(days: Int64) -> (year: Int, month: Int, day: Int) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let d = doy - (153 * mp + 2) / 5 + 1
        let m = mp < 10 ? mp + 3 : mp - 9
        return (Int(yoe + era * 400 + (m <= 2 ? 1 : 0)), Int(m), Int(d))
    }

    /// 0 = Sunday … 6 = Saturday.
    @inlinable
    package static func weekday(days: Int64) -> Int {
        let w = (days + 4) % 7  // 1970-01-01 was a Thursday
        return Int(w < 0 ? w + 7 : w)
    }

    @inlinable
    package static func isLeap(_ year: Int) -> Bool {
        year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
    }

    @inlinable
    package static func daysInMonth(year: Int, month: Int) -> Int {
        switch month {
        case 2: isLeap(year) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    /// A wall-clock time broken into its fields.
    package struct Fields: Equatable {
        package var year: Int
        package var month: Int
        package var day: Int
        package var hour: Int
        package var minute: Int
        package var second: Int

        @inlinable
        package init(year: Int, month: Int, day: Int, hour: Int, minute: Int, second: Int) {
            (self.year, self.month, self.day, self.hour, self.minute, self.second) = (year, month, day, hour, minute, second)
        }

        @inlinable
        package init(wall: Int64) {
            var days = wall / 86_400
            var secondOfDay = wall % 86_400
            if secondOfDay < 0 {
                secondOfDay += 86_400
                days -= 1
            }
            (year, month, day) = Civil.date(days: days)
            hour = Int(secondOfDay / 3600)
            minute = Int(secondOfDay % 3600 / 60)
            second = Int(secondOfDay % 60)
        }

        @inlinable
        package var wall: Int64 {
            Civil.days(year: year, month: month, day: day) * 86_400 + Int64(hour * 3600 + minute * 60 + second)
        }
    }
}
