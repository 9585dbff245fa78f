import Foundation
import Logging
import OctopusLog
import Synchronization
import Testing
import TestSupport

/// A running `octopus tail -f`, whose output is collected as it comes, line by line.
final class RunningTail: Sendable {
    private let process: Process
    /// The complete lines printed so far, and the start of the next one.
    private let printed = Mutex<(lines: [String], partial: [UInt8])>(([], []))
    private let errors = Mutex("")

    init(_ arguments: [String], in directory: String) throws {
        process = Process()
        process.executableURL = octopusBinary
        process.arguments = arguments
        process.currentDirectoryURL = URL(fileURLWithPath: directory)
        let pipe = Pipe()
        process.standardOutput = pipe
        let errorPipe = Pipe()
        process.standardError = errorPipe
        pipe.fileHandleForReading.readabilityHandler = { [self] handle in
            let data = handle.availableData
            self.printed.withLock { printed in
                for byte in data {
                    if byte == UInt8(ascii: "\n") {
                        printed.lines.append(String(decoding: printed.partial, as: UTF8.self))
                        printed.partial.removeAll(keepingCapacity: true)
                    } else {
                        printed.partial.append(byte)
                    }
                }
            }
        }
        errorPipe.fileHandleForReading.readabilityHandler = { [self] handle in
            let data = handle.availableData
            self.errors.withLock { $0 += String(decoding: data, as: UTF8.self) }
        }
        try process.run()
    }

    /// The complete lines printed so far.
    var lines: [String] { printed.withLock { $0.lines } }
    /// What it printed on stderr.
    var errorOutput: String { errors.withLock { $0 } }

    /// Waits (at most `seconds`) until it has printed `count` lines (of those `counted` accepts), and returns every line
    /// printed by then. Each line is looked at once: a follower printing 200,000 lines is not read again and again.
    func waitForLines(_ count: Int, seconds: Double = 15, counted: (String) -> Bool = { _ in true }) async throws -> [String] {
        let deadline = ContinuousClock.now + .seconds(seconds)
        var looked = 0
        var found = 0
        while ContinuousClock.now < deadline {
            let (total, more) = printed.withLock { printed in
                (printed.lines.count, printed.lines[looked...].count(where: counted))
            }
            looked = total
            found += more
            if found >= count { return lines }
            try await Task.sleep(for: .milliseconds(50))
        }
        return lines
    }

    func stop() {
        process.terminate()
        process.waitUntilExit()
    }
}

/// A directory with `config/config.default.yaml` holding `appender` (with `FILE` replaced by the log's absolute
/// path), and a log system writing through it.
func tailFixture(_ appender: String) throws -> (ScratchDirectory, LogSystem, String) {
    let dir = try ScratchDirectory()
    let file = dir.path + "/logs/app.log"
    let yaml = """
        log:
          appenders:
            app: \(appender.replacingOccurrences(of: "FILE", with: file))
          categories: { default: { appenders: [app], level: ALL } }
        """
    try dir.config("config.default.yaml", yaml)
    return (dir, try LogSystem(LogConfiguration(yaml: yaml)), file)
}

let sizeRolled = #"{ type: file, filename: "FILE", maxLogSize: 400, backups: 50, compress: true, layout: { type: pattern, pattern: "%d{yyyy-MM-dd hh:mm:ss.SSS} [%p] %c - %m" } }"#

@Suite struct TailTests {
    @Test func readsPlainAndCompressedRolledFilesInOrder() async throws {
        let (dir, system, file) = try tailFixture(sizeRolled)
        let logger = system.logger(label: "app")
        for i in 0..<60 { logger.info("line \(i)") }
        system.shutdownNow()
        // Make one archive plain again: tail reads a mix.
        let archive = try #require(try FileManager.default.contentsOfDirectory(atPath: dir.path + "/logs").first { $0.hasSuffix(".3.gz") })
        let plain = dir.path + "/logs/" + archive.dropLast(3)
        try Data(try LogArchive.decompress(dir.path + "/logs/" + archive)).write(to: URL(fileURLWithPath: plain))
        try FileManager.default.removeItem(atPath: dir.path + "/logs/" + archive)
        let outcome = try await octopus(["tail", "-n", "all", file], in: dir.path)
        #expect(outcome.status == 0)
        let messages = outcome.stdout.split(separator: "\n").map { $0.components(separatedBy: " - ").last ?? "" }
        #expect(messages == (0..<60).map { "line \($0)" })
        // -n keeps the last lines.
        let last = try await octopus(["tail", "-n", "3", file], in: dir.path).stdout.split(separator: "\n")
        #expect(last.map { $0.components(separatedBy: " - ").last ?? "" } == ["line 57", "line 58", "line 59"])
    }

    @Test func filtersByLevelCategoryGrepAndTime() async throws {
        let (dir, system, file) = try tailFixture(sizeRolled)
        system.logger(label: "db.pool").info("pool up")
        system.logger(label: "db").warning("db slow")
        system.logger(label: "web").error("web down")
        system.logger(label: "dbx").info("not under db")
        system.shutdownNow()
        func tail(_ extra: [String]) async throws -> [String] {
            try await octopus(["tail", "-n", "all"] + extra + [file], in: dir.path).stdout.split(separator: "\n").map {
                $0.components(separatedBy: " - ").last ?? ""
            }
        }
        #expect(try await tail(["--level", "warn"]) == ["db slow", "web down"])
        #expect(try await tail(["--category", "db"]) == ["pool up", "db slow"])
        #expect(try await tail(["--grep", "slow|down"]) == ["db slow", "web down"])
        #expect(try await tail(["--grep", "db"]).count == 3)  // the whole line, as grep: "pool up" matches by its category
        #expect(try await tail(["--since", "1h"]).count == 4)
        #expect(try await tail(["--until", "1h"]).isEmpty)
        #expect(try await tail(["--since", "2001-01-01T00:00:00Z", "--until", "2001-01-02"]).isEmpty)
        let json = try await octopus(["tail", "-n", "1", "--json", file], in: dir.path).stdout
        #expect(json.contains(#""level":"INFO","category":"dbx","message":"not under db""#))
        let bad = try await octopus(["tail", "--level", "LOUD", file], in: dir.path)
        #expect(bad.status != 0 && bad.stderr.contains("unknown level"))
    }

    @Test func followPicksUpTheNewFileAfterARename() async throws {
        let (dir, system, file) = try tailFixture(sizeRolled)
        defer { system.shutdownNow() }
        let logger = system.logger(label: "app")
        logger.info("before 0")
        system.flush()
        let tail = try RunningTail(["tail", "-f", "-n", "all", file], in: dir.path)
        defer { tail.stop() }
        _ = try await tail.waitForLines(1)
        // 40 lines of ~50 bytes into 400-byte files: several renames while tail follows.
        for i in 1...40 {
            logger.info("after \(i)")
            if i % 5 == 0 {
                system.flush()
                try await Task.sleep(for: .milliseconds(60))
            }
        }
        system.flush()
        let lines = try await tail.waitForLines(41)
        #expect(lines.map { $0.components(separatedBy: " - ").last ?? "" } == ["before 0"] + (1...40).map { "after \($0)" })
        #expect(system.counters(for: "app")?.rolls ?? 0 >= 3)
    }

    @Test func followPicksUpANewDatedFile() async throws {
        let (dir, system, file) = try tailFixture(
            #"{ type: dateFile, filename: "FILE", pattern: "yyyy-MM-dd-hh-mm-ss", alwaysIncludePattern: true, numBackups: 100, layout: { type: basic } }"#)
        defer { system.shutdownNow() }
        let logger = system.logger(label: "app")
        logger.info("first")
        system.flush()
        let tail = try RunningTail(["tail", "-f", "-n", "all", file], in: dir.path)
        defer { tail.stop() }
        _ = try await tail.waitForLines(1)
        // Lines over about three seconds: each second is a new file name.
        for i in 1...12 {
            logger.info("tick \(i)")
            system.flush()
            try await Task.sleep(for: .milliseconds(250))
        }
        let lines = try await tail.waitForLines(13)
        #expect(lines.map { $0.components(separatedBy: " - ").last ?? "" } == ["first"] + (1...12).map { "tick \($0)" })
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path + "/logs")
        #expect(files.count >= 3)
    }

    @Test func followStartsAgainAfterATruncation() async throws {
        let (dir, system, file) = try tailFixture(#"{ type: file, filename: "FILE", layout: { type: messagePassThrough } }"#)
        defer { system.shutdownNow() }
        let logger = system.logger(label: "app")
        for i in 1...3 { logger.info("old \(i)") }
        system.flush()
        let tail = try RunningTail(["tail", "-f", "-n", "all", file], in: dir.path)
        defer { tail.stop() }
        _ = try await tail.waitForLines(3)
        truncate(file, 0)
        try await Task.sleep(for: .milliseconds(300))
        logger.info("fresh")
        system.flush()
        let lines = try await tail.waitForLines(4)
        #expect(lines == ["old 1", "old 2", "old 3", "fresh"])
    }
}

/// `octopus tail -f` under bursts of rolls: a writer far faster than the follower's poll, rolling many times a
/// second, with archives removed by retention soon after.
@Suite struct TailBurstTests {
    /// Writes `total` lines of about 80 bytes at about `perSecond`, after a handshake line the tail has printed.
    func burst(appender: String, total: Int, perSecond: Int) async throws -> (lines: [String], expected: [String], rolls: Int) {
        let (dir, system, file) = try tailFixture(appender)
        defer { system.shutdownNow() }
        let logger = system.logger(label: "app")
        let tail = try RunningTail(["tail", "-f", "-n", "0", file], in: dir.path)
        defer { tail.stop() }
        // -n 0 prints nothing already written: write until the tail shows it follows.
        var ready = 0
        while !tail.lines.contains(where: { $0.hasPrefix("ready") }) {
            logger.info("ready \(ready)")
            ready += 1
            system.flush()
            try await Task.sleep(for: .milliseconds(50))
            #expect(ready < 600, "tail never printed a line")
            if ready >= 600 { return ([], [], 0) }
        }
        let pad = String(repeating: "x", count: 66)
        let batch = perSecond / 100
        // The writer's loop on a thread of its own (see `onThread`), a batch every 10 ms.
        let seconds = await onThread {
            let start = ContinuousClock.now
            for n in 0..<total {
                logger.info("line \(String(n).leftPadded(6)) \(pad)")
                if n % batch == batch - 1 {
                    let early = start + .milliseconds((n + 1) / batch * 10) - ContinuousClock.now
                    if early > .zero { usleep(UInt32(early / .microseconds(1))) }
                }
            }
            return (ContinuousClock.now - start) / .seconds(1)
        }
        system.flush()
        let rolls = system.counters(for: "app")?.rolls ?? 0
        print("tail burst: \(total) lines in \(String(format: "%.2f", seconds)) s (\(Int(Double(total) / seconds)) lines/s), \(rolls) rolls")
        let printed = try await tail.waitForLines(total, seconds: 60) { !$0.hasPrefix("ready") }.filter { !$0.hasPrefix("ready") }
        if !tail.errorOutput.isEmpty { print("tail's stderr: \(tail.errorOutput)") }
        return (printed, (0..<total).map { "line \(String($0).leftPadded(6)) \(pad)" }, rolls)
    }

    func check(_ result: (lines: [String], expected: [String], rolls: Int)) {
        #expect(result.lines.count == result.expected.count)
        if result.lines != result.expected {
            let firstDifference = zip(result.lines, result.expected).enumerated().first { $0.element.0 != $0.element.1 }?.offset
                ?? min(result.lines.count, result.expected.count)
            // The order it printed, as runs of consecutive line numbers, says what was skipped, repeated or late.
            var runs: [String] = []
            var runStart: Int?
            var previous: Int?
            for line in result.lines {
                let n = Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
                if let p = previous, n == p + 1 {
                    previous = n
                    continue
                }
                if let s = runStart, let p = previous { runs.append(s == p ? "\(s)" : "\(s)-\(p)") }
                runStart = n
                previous = n
            }
            if let s = runStart, let p = previous { runs.append(s == p ? "\(s)" : "\(s)-\(p)") }
            Issue.record(
                "first difference at line \(firstDifference) of \(result.lines.count): \(result.lines.dropFirst(firstDifference).first ?? "(none)"); printed in runs: \(runs.prefix(40).joined(separator: ", "))")
        }
    }

    /// About 14 rolls a second. 50 backups: a follower the machine starves for a moment (the suite runs tests in
    /// parallel) reads the rolled files it fell behind on from their archives, which the default 5 would remove
    /// within a third of a second.
    @Test func everyLineOnceInOrderThrough256KRollsWithGzip() async throws {
        let result = try await burst(
            appender: #"{ type: file, filename: "FILE", maxLogSize: 256K, backups: 50, compress: true, layout: { type: messagePassThrough } }"#,
            total: 200_000, perSecond: 50_000)
        check(result)
        #expect(result.rolls >= 50)
    }

    @Test func everyLineOnceInOrderThroughDateRolls() async throws {
        let result = try await burst(
            appender: #"{ type: dateFile, filename: "FILE", pattern: "yyyy-MM-dd-hh-mm-ss", compress: true, numBackups: 3, layout: { type: messagePassThrough } }"#,
            total: 150_000, perSecond: 50_000)
        check(result)
        #expect(result.rolls >= 2)
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { String(repeating: "0", count: max(0, width - count)) + self }
}

/// The follower behind `tail -f`, driven by hand: reading nothing while the log rolls many times, it finds the
/// files it never opened in their archives, in order.
@Suite struct LogFollowerTests {
    let appender = #"{ type: file, filename: "FILE", maxLogSize: 2K, backups: 100, compress: true, layout: { type: messagePassThrough } }"#
    let rotation = RotationOptions(maxLogSize: 2048, backups: 100, compress: true)

    func readAll(_ follower: LogFollower, _ count: Int) -> [String] {
        var lines: [String] = []
        for _ in 0..<300 where lines.count < count { lines += follower.next(waiting: 100) }
        return lines
    }

    @Test func filesRolledWhileTheFollowerDidNotReadAreReadFromTheirArchivesInOrder() throws {
        let (dir, system, file) = try tailFixture(appender)
        defer {
            system.shutdownNow()
            withExtendedLifetime(dir) {}
        }
        let logger = system.logger(label: "app")
        logger.info("first")
        system.flush()
        let follower = LogFollower(path: file, rotation: rotation, fromStart: true)
        var reports: [String] = []
        follower.report = { reports.append($0) }
        #expect(follower.readAvailable() == ["first"])
        let expected = (0..<500).map { "line \($0) of a log that rolls every twenty lines or so" }
        for line in expected { logger.info("\(line)") }  // about 25 rolls, none seen as it happens
        system.flush()
        #expect(system.counters(for: "app")?.rolls ?? 0 >= 10)
        #expect(readAll(follower, 500) == expected)
        #expect(reports.isEmpty, "\(reports)")
    }

    /// A rolled file still pending (not yet named) when following begins comes before the hot file: nothing is
    /// printed until it is named, and then every file once, in order.
    @Test func aFileStillPendingIsWaitedForAndNoRolledFileIsPrintedTwice() throws {
        let dir = try ScratchDirectory()
        let logs = dir.path + "/logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        let follower = LogFollower(path: logs + "/app.log", rotation: rotation)
        #expect(follower.startedEmpty)
        func write(_ name: String, _ text: String) throws {
            try Data(text.utf8).write(to: URL(fileURLWithPath: logs + "/" + name))
        }
        try write("app.log.1", "oldest\n")
        try write("app.log.rolling-1-1", "pending\n")
        try write("app.log", "hot\n")
        #expect(follower.readAvailable().isEmpty)  // the pending file is not named yet
        #expect(rename(logs + "/app.log.1", logs + "/app.log.2") == 0)
        #expect(rename(logs + "/app.log.rolling-1-1", logs + "/app.log.1") == 0)
        #expect(follower.readAvailable() == ["oldest", "pending", "hot"])
    }

    /// Files missed while the first file was held come after it, even when a listing does not show that file
    /// (here it was moved away; a directory read while names shift can miss one the same way).
    @Test func filesMissedWhileTheFirstFileWasHeldArePrintedAfterIt() throws {
        let dir = try ScratchDirectory()
        let logs = dir.path + "/logs"
        try FileManager.default.createDirectory(atPath: logs, withIntermediateDirectories: true)
        func write(_ name: String, _ text: String) throws {
            try Data(text.utf8).write(to: URL(fileURLWithPath: logs + "/" + name))
        }
        try write("app.log", "a\n")
        let follower = LogFollower(path: logs + "/app.log", rotation: rotation, fromStart: true)
        #expect(follower.readAvailable() == ["a"])
        let appended = try FileHandle(forWritingTo: URL(fileURLWithPath: logs + "/app.log"))
        try appended.seekToEnd()
        try appended.write(contentsOf: Data("a2\n".utf8))
        try appended.close()
        #expect(rename(logs + "/app.log", logs + "/elsewhere") == 0)
        try write("app.log", "b\n")  // hot too briefly to be opened
        #expect(rename(logs + "/app.log", logs + "/app.log.1") == 0)
        try write("app.log", "c\n")
        #expect(follower.readAvailable() == ["a2", "b", "c"])
    }

    @Test func aLogThatDidNotExistYetIsFollowedFromItsFirstFile() throws {
        let dir = try ScratchDirectory()
        let file = dir.path + "/logs/app.log"
        let follower = LogFollower(path: file, rotation: rotation)  // neither the directory nor the file exist
        #expect(follower.startedEmpty)
        #expect(follower.readAvailable().isEmpty)
        let system = try LogSystem(LogConfiguration(yaml: """
            log:
              appenders:
                app: \(appender.replacingOccurrences(of: "FILE", with: file))
              categories: { default: { appenders: [app], level: ALL } }
            """))
        defer { system.shutdownNow() }
        let logger = system.logger(label: "app")
        let expected = (0..<200).map { "line \($0) of a log that rolls every twenty lines or so" }
        for line in expected { logger.info("\(line)") }
        system.flush()
        #expect(readAll(follower, 200) == expected)
    }
}
