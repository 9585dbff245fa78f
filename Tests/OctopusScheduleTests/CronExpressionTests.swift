import Foundation
import Testing

@testable import OctopusSchedule

/// Reads the reference cases (copied from shared/cases): lines of tab-separated fields, `#` comments skipped.
func caseRows(_ name: String) throws -> [[String]] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Cases/\(name)")
    return try String(contentsOf: url, encoding: .utf8).split(separator: "\n")
        .filter { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        .map { $0.split(separator: "\t", omittingEmptySubsequences: false).map(String.init) }
}

/// ISO-8601 with an offset, or without one as wall time in `zone` (the first pass, when a wall time repeats).
func parseTime(_ text: String, in zone: TimeZone) -> Date? {
    ISOTime.parse(text, in: zone)
}

struct CronPublicCase: CustomStringConvertible, Sendable {
    var expression: String
    var start: String
    var zone: String
    var expected: [String]
    var description: String { "\(expression) from \(start) in \(zone)" }
}

let publicCases: [CronPublicCase] = (try? caseRows("cron-public.tsv"))?.map {
    CronPublicCase(expression: $0[0], start: $0[1], zone: $0[2], expected: Array($0[3...]))
} ?? []

@Suite struct CronExpressionTests {
    @Test func theReferenceFileIsRead() {
        #expect(publicCases.count >= 70)
    }

    @Test(arguments: publicCases)
    func firesAtTheReferenceTimes(_ row: CronPublicCase) throws {
        let zone = try #require(TimeZone(identifier: row.zone))
        let cron = try CronExpression(row.expression, timeZone: zone)
        var cursor = try #require(parseTime(row.start, in: zone))
        var got: [String] = []
        for _ in row.expected {
            guard let next = cron.next(after: cursor) else { break }
            got.append(ISOTime.format(next, in: zone))
            cursor = next
        }
        #expect(got == row.expected)
    }

    @Test(arguments: publicCases)
    func previousMirrorsNext(_ row: CronPublicCase) throws {
        let zone = try #require(TimeZone(identifier: row.zone))
        let cron = try CronExpression(row.expression, timeZone: zone)
        let times = try row.expected.map { try #require(parseTime($0, in: zone)) }
        for index in stride(from: times.count - 1, to: 0, by: -1) {
            let previous = try #require(cron.previous(before: times[index]))
            #expect(ISOTime.format(previous, in: zone) == row.expected[index - 1], "before \(row.expected[index])")
        }
        let start = try #require(parseTime(row.start, in: zone))
        let beforeFirst = try #require(cron.previous(before: times[0]))
        #expect(beforeFirst <= start)
    }

    @Test func errorsNameTheFieldAtFault() throws {
        let rows = try caseRows("cron-errors.tsv")
        #expect(rows.count >= 9)
        for row in rows {
            // The cases file expects "minute" for `0 61 * * *`, but in the five-field form (m h dom mon dow) the
            // 61 stands in the hour field: Octopus names the field the text is in. `0 61 * * * *` is the minute.
            let word = row[0] == "0 61 * * *" ? "hour" : row[1]
            do {
                _ = try CronExpression(row[0], timeZone: .gmt)
                Issue.record("\(row[0]) was accepted")
            } catch {
                #expect(error.description.lowercased().contains(word.lowercased()), "\(row[0]): \(error)")
                #expect(error.description.contains("\"\(row[0])\""))
            }
        }
    }

    @Test func theErrorMessageSaysWhatAndWhere() {
        do {
            _ = try CronExpression("61 0 * * *", timeZone: .gmt)
            Issue.record("accepted")
        } catch {
            #expect(error.description == #"invalid cron expression "61 0 * * *": minute "61" is out of range 0-59"#)
            #expect(error.field == .minute)
        }
        do {
            _ = try CronExpression("0 61 * * *", timeZone: .gmt)
            Issue.record("accepted")
        } catch {
            #expect(error.description == #"invalid cron expression "0 61 * * *": hour "61" is out of range 0-23"#)
            #expect(error.field == .hour)
        }
        do {
            _ = try CronExpression("0 61 * * * *", timeZone: .gmt)
            Issue.record("accepted")
        } catch {
            #expect(error.field == .minute)
        }
    }

    @Test(arguments: [
        ("* * * *", "expected 5 fields"), ("0 0 30 2 *", "never fires"), ("*/0 * * * *", "step 0"),
        ("5-2 * * * *", "backwards"), ("0 0 * * 1#6", "occurrence"), ("0 0 1,,2 * *", "empty list item"),
        ("0 0 * * FOO", "day-of-week \"FOO\""), ("a b c d e", "minute \"a\""), ("0 0 * * 0/0", "step 0"), ("1 2 3 4 5 6 7", "found 7"),
    ])
    func rejects(_ expression: String, _ words: String) {
        do {
            _ = try CronExpression(expression, timeZone: .gmt)
            Issue.record("\(expression) was accepted")
        } catch {
            #expect(error.description.contains(words), "\(error)")
        }
    }

    @Test func sparseExpressionsCompute() throws {
        let cron = try CronExpression("0 0 29 2 1", timeZone: .gmt)
        // 29 February on a Monday (both day fields restricted: either matches) — and with only that day allowed:
        let strict = try CronExpression("0 0 29 2 *", timeZone: .gmt)
        let start = try #require(parseTime("2026-11-21T12:00:00", in: .gmt))
        #expect(cron.next(after: start) != nil)
        #expect(ISOTime.format(try #require(strict.next(after: start)), in: .gmt) == "2028-02-29T00:00:00+00:00")
        // The 5th Friday of February exists only in leap years that begin on a Thursday… in February 2036? No: 2036-02-29 is a Friday.
        let fifthFriday = try CronExpression("0 0 * 2 5#5", timeZone: .gmt)
        #expect(ISOTime.format(try #require(fifthFriday.next(after: start)), in: .gmt) == "2036-02-29T00:00:00+00:00")
    }

    @Test func namesAndPresetsInAnyCase() throws {
        let start = try #require(parseTime("2026-11-21T12:00:00", in: .gmt))
        let a = try CronExpression("0 9 * jan-Mar mon-FRI", timeZone: .gmt)
        let b = try CronExpression("0 9 * 1-3 1-5", timeZone: .gmt)
        #expect(a.next(after: start) == b.next(after: start))
        let daily = try CronExpression("@DAILY", timeZone: .gmt)
        #expect(ISOTime.format(try #require(daily.next(after: start)), in: .gmt) == "2026-11-22T00:00:00+00:00")
    }

    @Test func fractionsOfASecondAreStrictlyAfterAndBefore() throws {
        let cron = try CronExpression("* * * * * *", timeZone: .gmt)
        let t = Date(timeIntervalSince1970: 1_795_219_200.5)
        #expect(cron.next(after: t)?.timeIntervalSince1970 == 1_795_219_201)
        #expect(cron.previous(before: t)?.timeIntervalSince1970 == 1_795_219_200)
        #expect(cron.next(after: Date(timeIntervalSince1970: 1_795_219_200))?.timeIntervalSince1970 == 1_795_219_201)
    }
}
