import Foundation
import Logging
import Synchronization
import Testing
import TestSupport

@testable import OctopusLog

#if canImport(Glibc)
import Glibc
#endif

/// A system with one `file` appender named `file` writing `path` with the message alone on each line.
func fileSystem(
    _ path: String,
    writer: WriterOptions = WriterOptions(),
    syncLevel: LogLevel? = nil,
    layout: LayoutConfiguration = .messagePassThrough
) throws -> LogSystem {
    try LogSystem(
        LogConfiguration(
            appenders: ["file": AppenderConfiguration(.file(FileAppenderOptions(filename: path)), layout: layout, writer: writer, syncLevel: syncLevel)],
            categories: ["default": CategoryConfiguration(appenders: ["file"], level: .all)]
        )
    )
}

/// Runs `body(t)` for t in 0..<threads, each on a thread of its own, all begun together; returns when every one has
/// ended (waited for on a thread of its own too: see ``onThread(_:)``).
func inParallel(_ threads: Int, _ body: @escaping @Sendable (Int) -> Void) async {
    await onThread {
        let done = DispatchGroup()
        let start = DispatchSemaphore(value: 0)
        for index in 0..<threads {
            done.enter()
            Thread {
                start.wait()
                body(index)
                done.leave()
            }.start()
        }
        for _ in 0..<threads { start.signal() }
        done.wait()
    }
}

/// The lines of the file at `path` (split by its bytes: splitting a `String` by `Character` takes seconds for the
/// larger files here in a debug build).
func fileLines(_ path: String) throws -> [Substring] {
    try String(contentsOfFile: path, encoding: .utf8).utf8.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        .dropLast().map { Substring($0) }
}

/// Reads lines `t=<thread> i=<index> <padding>`: how many lines of each thread came whole and in order from 0, and
/// the first few lines that did not (out of their thread's order, doubled, torn or malformed).
func linesInTheirThreadsOrder(_ lines: [Substring], threads: Int, padding: String) -> (next: [Int], problems: [String]) {
    var next = [Int](repeating: 0, count: threads)
    var problems: [String] = []
    for (index, line) in lines.enumerated() {
        let parts = line.utf8.split(separator: UInt8(ascii: " ")).map { Substring($0) }
        guard parts.count == 3, parts[2] == padding, let t = Int(parts[0].dropFirst(2)),
            let i = Int(parts[1].dropFirst(2)), (0..<threads).contains(t), next[t] == i
        else {
            if problems.count < 3 { problems.append("line \(index + 1): \(line.prefix(30))") }
            continue
        }
        next[t] += 1
    }
    return (next, problems)
}

/// Expects `lines` to be every line `t=<thread> i=<index> <padding>` of `threads` threads, `perThread` each: each
/// once, whole, in its thread's order.
func expectEachThreadsLinesOnceInOrder(
    _ lines: [Substring], threads: Int, perThread: Int, padding: String,
    sourceLocation: SourceLocation = #_sourceLocation
) {
    #expect(lines.count == threads * perThread, sourceLocation: sourceLocation)
    let (next, problems) = linesInTheirThreadsOrder(lines, threads: threads, padding: padding)
    #expect(problems.isEmpty, "\(problems)", sourceLocation: sourceLocation)
    #expect(next == [Int](repeating: perThread, count: threads), sourceLocation: sourceLocation)
}

@Suite struct WriterTests {
    @Test func eightThreadsEachLineExactlyOnceWholeAndInOrder() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("app.log")
        let system = try fileSystem(path, writer: WriterOptions(bufferSize: 64 * 1024))
        let threads = 8
        let perThread = 50_000
        let padding = String(repeating: "x", count: 60)
        await inParallel(threads) { t in
            let logger = system.logger(label: "worker.\(t)")
            for i in 0..<perThread { logger.info("t=\(t) i=\(i) \(padding)") }
        }
        try await system.shutdown()
        expectEachThreadsLinesOnceInOrder(try fileLines(path), threads: threads, perThread: perThread, padding: padding)
        let counters = try #require(system.counters(for: "file"))
        #expect(counters.lines == threads * perThread)
        #expect(counters.drops == 0 && counters.writeErrors == 0)
        #expect(counters.batches < counters.lines / 10)  // batched, not one write per line
    }

    @Test func dropPolicyAccountsForEveryLineAndSaysHowManyWereDropped() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("drop.log")
        let system = try fileSystem(path, writer: WriterOptions(bufferSize: 1024, overflow: .drop))
        let threads = 4
        let perThread = 20_000
        await inParallel(threads) { t in
            let logger = system.logger(label: "burst")
            for i in 0..<perThread { logger.info("line \(t) \(i) ......................................") }
        }
        try await system.shutdown()
        let lines = try fileLines(path)
        let notices = lines.filter { $0.hasPrefix("dropped ") }
        let written = lines.count - notices.count
        let counters = try #require(system.counters(for: "file"))
        #expect(written == counters.lines)
        #expect(written + counters.drops == threads * perThread)
        #expect(counters.drops > 0, "a 1 KiB buffer under four threads should overflow")
        let reported = notices.compactMap { Int($0.split(separator: " ")[1]) }.reduce(0, +)
        #expect(reported == counters.drops)
        #expect(notices.allSatisfy { $0.hasSuffix("log line(s): the buffer of \(path) was full") })
    }

    @Test func blockPolicyLosesNothingWithATinyBuffer() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("block.log")
        let system = try fileSystem(path, writer: WriterOptions(bufferSize: 1024, overflow: .block))
        await inParallel(4) { t in
            let logger = system.logger(label: "burst")
            for i in 0..<10_000 { logger.info("line \(t) \(i)") }
        }
        try await system.shutdown()
        #expect(try fileLines(path).count == 40_000)
        #expect(system.counters(for: "file")?.drops == 0)
    }

    /// Lines larger than the writer's buffer (and durable ones) among small ones, from several threads at once: each
    /// written exactly once, whole, in each thread's order, and counted.
    @Test(arguments: [OverflowPolicy.block, .drop])
    func linesLargerThanTheBufferAreWrittenWholeInOrder(_ overflow: OverflowPolicy) async throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("large.log")
        let system = try fileSystem(path, writer: WriterOptions(bufferSize: 1024, overflow: overflow), syncLevel: .error)
        let threads = 4
        let perThread = 2_000
        await inParallel(threads) { t in
            let logger = system.logger(label: "large")
            for i in 0..<perThread {
                let size = i % 10 == 0 ? 1000 + (i * 37 + t * 101) % 5000 : 20
                let line: Logger.Message = "t=\(t) i=\(i) \(String(repeating: "y", count: size))"
                if i % 25 == 0 { logger.error(line) } else { logger.info(line) }
            }
        }
        try await system.shutdown()
        let counters = try #require(system.counters(for: "file"))
        var next = [Int](repeating: 0, count: threads)
        var malformed = 0
        var written = 0
        for line in try fileLines(path) where !line.hasPrefix("dropped ") {
            written += 1
            let parts = line.split(separator: " ")
            guard parts.count == 3, let t = Int(parts[0].dropFirst(2)), let i = Int(parts[1].dropFirst(2)),
                (0..<threads).contains(t), i >= next[t],
                parts[2].count == (i % 10 == 0 ? 1000 + (i * 37 + t * 101) % 5000 : 20)
            else {
                malformed += 1
                continue
            }
            next[t] = i + 1
        }
        #expect(malformed == 0)
        #expect(written == counters.lines)
        #expect(written + counters.drops == threads * perThread)
        if overflow == .block {
            #expect(counters.drops == 0 && next == [Int](repeating: perThread, count: threads))
        }
    }

    @Test func everythingLoggedBeforeShutdownIsInTheFileWhenItReturns() async throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("nested/dirs/app.log")  // parent directories are created
        let system = try fileSystem(path)
        let logger = system.logger(label: "app")
        for i in 0..<100_000 { logger.info("n=\(i)") }
        try await system.shutdown()
        let lines = try fileLines(path)
        #expect(lines.count == 100_000)
        #expect(lines.last == "n=99999")
        // After shutdown nothing is written, nothing crashes, and the line is counted as dropped.
        logger.info("late")
        try await system.shutdown()
        #expect(try fileLines(path).count == 100_000)
        #expect(system.counters(for: "file")?.drops == 1)
    }

    @Test func flushWritesEverythingLoggedBefore() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("flush.log")
        let system = try fileSystem(path)
        defer { system.shutdownNow() }
        let logger = system.logger(label: "app")
        for i in 0..<1000 { logger.info("n=\(i)") }
        system.flush()
        #expect(try fileLines(path).count == 1000)
    }

    @Test func aLineLoggedWhileTheWriterSleepsReachesTheFileWithoutAFlush() async throws {
        // Most lines find the writer asleep (the one before it was written, and nothing came since): the caller that
        // finds it so must wake it. A wake lost once leaves that line in the buffer until the deadline.
        let dir = try TemporaryDirectory()
        let path = dir.file("wake.log")
        let system = try fileSystem(path)
        defer { system.shutdownNow() }
        let logger = system.logger(label: "app")
        var expectedSize = 0
        for i in 0..<300 {
            let line = "line \(i)"
            logger.info("\(line)")
            expectedSize += line.utf8.count + 1
            var st = stat()
            await eventually("line \(i) in the file without a flush") {
                stat(path, &st) == 0 && Int(st.st_size) >= expectedSize
            }
            try #require(Int(st.st_size) == expectedSize)
        }
        #expect(try fileLines(path).last == "line 299")
    }

    @Test func eventsAtSyncLevelAreWrittenBeforeTheCallReturns() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("sync.log")
        let system = try fileSystem(path, writer: WriterOptions(fsync: true), syncLevel: .error)
        defer { system.shutdownNow() }
        let logger = system.logger(label: "app")
        for i in 0..<10 {
            logger.info("info \(i)")
            logger.error("error \(i)")
            // No flush: the error call itself waited for its line (and the info before it) to be written.
            let lines = try fileLines(path)
            #expect(lines.suffix(2) == ["info \(i)", "error \(i)"])
        }
    }

    @Test func defaultModeIs0640AndConfigurable() throws {
        let dir = try TemporaryDirectory()
        let previous = umask(0o022)
        defer { umask(previous) }
        let a = try fileSystem(dir.file("a.log"))
        let b = try fileSystem(dir.file("b.log"), writer: WriterOptions(mode: 0o600))
        a.shutdownNow()
        b.shutdownNow()
        let modeA = try FileManager.default.attributesOfItem(atPath: dir.file("a.log"))[.posixPermissions] as? Int
        let modeB = try FileManager.default.attributesOfItem(atPath: dir.file("b.log"))[.posixPermissions] as? Int
        #expect(modeA == 0o640)
        #expect(modeB == 0o600)
    }

    @Test func aFullDiskIsCountedReportedAndSurvived() throws {
        let system = try fileSystem("/dev/full")
        let logger = system.logger(label: "app")
        for i in 0..<100 {
            logger.info("n=\(i)")
            if i % 10 == 0 { system.flush() }
        }
        system.flush()
        let counters = try #require(system.counters(for: "file"))
        #expect(counters.writeErrors > 0)
        #expect(counters.lostLines == 100)
        #expect(counters.lines == 0)
        system.shutdownNow()
    }

    @Test func aRemovedDirectoryIsRecreatedAndWritingResumes() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("gone/app.log")
        let system = try fileSystem(path, writer: WriterOptions(fileCheckInterval: 0))
        defer { system.shutdownNow() }
        let logger = system.logger(label: "app")
        logger.info("before")
        system.flush()
        try FileManager.default.removeItem(atPath: dir.file("gone"))
        logger.info("after")
        system.flush()
        #expect(try fileLines(path) == ["after"])
    }

    @Test(.enabled(if: canMountTmpfs(), "needs permission to mount a tmpfs"))
    func aSmallFilesystemThatFillsUpThenFreesSpace() throws {
        let mount = try TemporaryDirectory()
        try #require(Self.run("/bin/mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", mount.path) == 0)
        defer { _ = Self.run("/bin/umount", mount.path) }
        let path = mount.file("app.log")
        let system = try fileSystem(path, writer: WriterOptions(bufferSize: 4096))
        defer { system.shutdownNow() }
        let logger = system.logger(label: "app")
        let line = String(repeating: "y", count: 200)
        for _ in 0..<1000 { logger.info("\(line)") }  // 200 KB into 64 KB
        system.flush()
        let full = try #require(system.counters(for: "file"))
        #expect(full.writeErrors > 0)
        #expect(full.lines + full.lostLines == 1000)
        // Free the space (truncate the log itself), and writing resumes.
        truncate(path, 0)
        logger.info("resumed")
        system.flush()
        #expect(try fileLines(path).last == "resumed")
    }

    @Test func appendersOfOneFileShareItsWriterAndConflictingOptionsAreRefused() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("shared.log")
        let system = try LogSystem(
            LogConfiguration(
                appenders: [
                    "a": AppenderConfiguration(.file(FileAppenderOptions(filename: path)), layout: .messagePassThrough),
                    "b": AppenderConfiguration(.file(FileAppenderOptions(filename: path)), layout: .messagePassThrough),
                ],
                categories: ["default": CategoryConfiguration(appenders: ["a", "b"], level: .info)]
            ))
        system.logger(label: "x").info("twice")
        system.shutdownNow()
        #expect(try fileLines(path) == ["twice", "twice"])
        #expect(throws: LogSystemError.self) {
            try LogSystem(
                LogConfiguration(
                    appenders: [
                        "a": AppenderConfiguration(.file(FileAppenderOptions(filename: path))),
                        "b": AppenderConfiguration(.file(FileAppenderOptions(filename: path)), writer: WriterOptions(overflow: .drop)),
                    ],
                    categories: ["default": CategoryConfiguration(appenders: ["a", "b"], level: .info)]
                ))
        }
    }

    /// Lines of a pattern that reads only the date and the message are rendered by the writer, from a copy of the
    /// two: two appenders writing one file with different dates in different zones, across milliseconds, seconds
    /// and days, with lines larger than the writer's buffer (rendered by the caller) and lines with metadata (which
    /// `basic` prints: rendered by the caller too) among them. The file holds what each layout renders from the
    /// record, in the order logged.
    @Test func linesTheWriterRendersAreWhatTheirLayoutsRenderInTheOrderLogged() throws {
        @Sendable func timestamp(_ nanoseconds: Int64) -> LogTimestamp {
            LogTimestamp(seconds: nanoseconds / 1_000_000_000, nanoseconds: Int32(nanoseconds % 1_000_000_000))
        }
        let dir = try TemporaryDirectory()
        let path = dir.file("app.log")
        let now = Atomic<Int64>(0)
        let layouts: [String: LayoutConfiguration] = [
            "a": .pattern("%d{yyyy-MM-dd hh:mm:ss.SSS} [%p] %c - %m", tokens: [:], timeZone: .utc),
            "b": .pattern("%d{ISO8601_WITH_TZ_OFFSET} %-5p %c %m %%", tokens: [:], timeZone: .named("Asia/Tokyo")),
            "c": .basic(timeZone: .named("America/St_Johns")),
        ]
        let writer = WriterOptions(bufferSize: 4096)
        let system = try LogSystem(
            LogConfiguration(
                appenders: layouts.mapValues {
                    AppenderConfiguration(.file(FileAppenderOptions(filename: path)), layout: $0, writer: writer)
                },
                categories: [
                    "default": CategoryConfiguration(appenders: ["a"], level: .all),
                    "tokyo": CategoryConfiguration(appenders: ["b"], level: .all, inherit: false),
                    "newfoundland": CategoryConfiguration(appenders: ["c"], level: .all, inherit: false),
                ]),
            clock: .custom { timestamp(now.load(ordering: .relaxed)) }, environment: testEnvironment)
        defer { system.shutdownNow() }
        let categories = ["app", "tokyo", "newfoundland"]
        let rendered = try categories.map { category in
            try layouts[category == "app" ? "a" : category == "tokyo" ? "b" : "c"]!.make(environment: testEnvironment)
        }
        for category in categories {
            let programs = try #require(system.node(for: category).eventWriters?.first?.programs)
            #expect(programs.allSatisfy { $0.format != 0 }, "\(category): the writer renders its lines")
        }
        let loggers = categories.map { system.logger(label: $0) }
        var expected: [String] = []
        var time = Int64(fixedTime.seconds) * 1_000_000_000 + Int64(fixedTime.nanoseconds)
        for step in 0..<3000 {
            time += step % 500 == 499 ? 86_400_123_456_789 : step % 7 == 0 ? 1_000_000_000 : 123_457
            now.store(time, ordering: .relaxed)
            let which = step % 3
            let level = Logger.Level.allCases[step % Logger.Level.allCases.count]
            let message = step % 250 == 0 ? "large \(step) " + String(repeating: "ü", count: 3000) : "line \(step) ü"
            var record = LogRecord(
                level: system.levels.level(for: level), category: categories[which], message: message,
                timestamp: timestamp(time), file: "", function: "", line: 0)
            if step % 11 == 0 && which == 2 {
                record.metadata = ["request": "r\(step)"]
                loggers[which].log(level: level, "\(message)", metadata: record.metadata)
            } else {
                loggers[which].log(level: level, "\(message)")
            }
            expected.append(rendered[which].string(for: record))
        }
        system.flush()
        let lines = try fileLines(path)
        #expect(lines.count == expected.count)
        for (index, (line, wanted)) in zip(lines, expected).enumerated() where line != wanted {
            Issue.record("line \(index + 1): \(line.prefix(80)) where \(wanted.prefix(80)) was expected")
            break
        }
        let counters = try #require(system.counters(for: "a"))
        #expect(counters.lines == expected.count && counters.drops == 0)
    }

    @Test func aFileThatCannotBeOpenedFailsTheSystem() throws {
        let dir = try TemporaryDirectory()
        try "not a directory".write(toFile: dir.file("blocker"), atomically: true, encoding: .utf8)
        #expect {
            try fileSystem(dir.file("blocker/app.log"))
        } throws: { error in
            (error as? LogSystemError)?.code == .cannotOpen
        }
    }

    static func run(_ arguments: String...) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: arguments[0])
        process.arguments = Array(arguments.dropFirst())
        process.standardError = FileHandle.nullDevice
        do { try process.run() } catch { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

/// Whether this process may mount a tmpfs (root on Linux, outside a restricted container).
func canMountTmpfs() -> Bool {
    guard geteuid() == 0, let dir = try? TemporaryDirectory() else { return false }
    guard WriterTests.run("/bin/mount", "-t", "tmpfs", "-o", "size=4k", "tmpfs", dir.path) == 0 else { return false }
    _ = WriterTests.run("/bin/umount", dir.path)
    return true
}
