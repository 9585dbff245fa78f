import Foundation
import Synchronization
import Testing

@testable import OctopusLog

#if canImport(Glibc)
import Glibc
#endif

/// A writer with one format registered, number 1: the message alone (`%m`), which the writer renders.
private func writer(_ path: String, _ options: WriterOptions, _ testOptions: WriterTestOptions = WriterTestOptions())
    throws -> LogWriter
{
    let writer = try LogWriter(
        target: .file(path), options: options, testOptions: testOptions,
        dropNotice: { Array("dropped \($0)\n".utf8) })
    let layout = try PatternLayout(pattern: "%m")
    let format = writer.registerFormat(layout: layout, program: layout.program(category: "", level: .info))
    precondition(format == 1)
    return writer
}

/// Hands `line` (which ends with a newline) to the writer rendered, or, for every other length, as a message for the
/// writer to render: the file is the same either way, and the two kinds of record mix in the buffers.
private func submit(_ writer: LogWriter, _ line: String, durable: Bool = false) {
    var line = line
    line.withUTF8 { bytes in
        if bytes.count % 2 == 0 {
            writer.submit(bytes, durable: durable)
        } else {
            writer.submitDeferred(
                format: 1, timestamp: LogTimestamp(seconds: 0), message: UnsafeBufferPointer(rebasing: bytes.dropLast()),
                durable: durable)
        }
    }
}

/// The writer's lanes: where stamps order events across CPUs, a caller claims its line's place in the lane of the CPU
/// it runs on; the writer writes the lanes' lines in stamp order. These tests turn the lanes on from the first line
/// (in use they come on when callers collide), and check the orders a reader of the file relies on.
@Suite(.serialized) struct WriterLaneTests {
    /// A line logged after another thread's line was seen comes after it in the file: four threads pass a token
    /// round, each logging one line per turn, so the file's order is the token's. Durable lines, flushes and lines
    /// larger than a buffer (written apart from the buffers) are mixed in.
    ///
    /// With `pauseBetweenSwaps`, the writer swaps the first lane's buffers, then waits before the others': a line
    /// can then be claimed in a new buffer and the next, logged after it on another CPU, in an old one. Lines stamped
    /// after the pass began wait for the next pass, or the second would be written first.
    @Test(arguments: [0, 0.0005])
    func linesHandedFromThreadToThreadAreWrittenInTheOrderTheyWereLogged(pauseBetweenSwaps: Double) async throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("relay.log")
        let writer = try writer(
            path, WriterOptions(bufferSize: 16 * 1024),
            WriterTestOptions(lanesFromStart: true, pauseBetweenSwaps: pauseBetweenSwaps))
        #expect(writer.lanesOn == (LogWriter.lanesForThisMachine > 1))
        let threads = 4
        let total = 8_000
        let oversized = String(repeating: "o", count: 20 * 1024)
        let token = Atomic<Int>(0)
        await inParallel(threads) { t in
            var next = t
            while next < total {
                while token.load(ordering: .acquiring) != next { sched_yield() }
                if next % 2_001 == 0 {
                    submit(writer, "\(next) \(oversized)\n")
                } else {
                    submit(writer, "\(next) relayed\n", durable: next % 397 == 0)
                }
                if next % 599 == 0 { writer.flush() }
                token.store(next + 1, ordering: .releasing)
                next += threads
            }
        }
        writer.shutdown()
        let lines = try fileLines(path)
        #expect(lines.count == total)
        let outOfOrder = lines.enumerated().filter { index, line in
            line.split(separator: " ").first.flatMap { Int($0) } != index
        }
        #expect(outOfOrder.isEmpty, "first lines out of order: \(outOfOrder.prefix(3).map { ($0.offset, $0.element.prefix(40)) })")
        #expect(writer.currentCounters.lines == total)
    }

    /// How the lanes come on in a test.
    enum Lanes: String, CustomTestStringConvertible, CaseIterable {
        /// When callers collide (or never).
        case whenCallersCollide
        /// From the first line.
        case fromStart
        /// At the writer's third pass, while four threads log, the writer pausing between lane swaps: callers that
        /// see the lanes on meet lanes not swapped yet.
        case whileThreadsLog
        var testDescription: String { rawValue }
    }

    /// Each thread's lines in its order, none lost, doubled or torn.
    @Test(arguments: Lanes.allCases)
    func fourThreadsEachLineOnceWholeAndInOrder(lanes: Lanes) async throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("lanes.log")
        let testOptions =
            switch lanes {
            case .whenCallersCollide: WriterTestOptions()
            case .fromStart: WriterTestOptions(lanesFromStart: true)
            case .whileThreadsLog: WriterTestOptions(lanesAtPass: 3, pauseBetweenSwaps: 0.02)
            }
        // Small buffers have callers wait for room; with the lanes coming on, large enough that callers keep
        // claiming while the writer swaps.
        let writer = try writer(path, WriterOptions(bufferSize: lanes == .whileThreadsLog ? 4 << 20 : 8 * 1024), testOptions)
        let threads = 4
        let perThread = 50_000
        let padding = String(repeating: "x", count: 60)
        await inParallel(threads) { t in
            for i in 0..<perThread { submit(writer, "t=\(t) i=\(i) \(padding)\n", durable: i % 10_007 == 0) }
        }
        writer.shutdown()
        if lanes != .whenCallersCollide { #expect(writer.lanesOn == (LogWriter.lanesForThisMachine > 1)) }
        expectEachThreadsLinesOnceInOrder(try fileLines(path), threads: threads, perThread: perThread, padding: padding)
        #expect(writer.currentCounters.lines == threads * perThread)
    }

    /// A process that logs from one thread at a time keeps one lane: nothing collides, so nothing is stamped.
    @Test func oneThreadKeepsOneLane() throws {
        let dir = try TemporaryDirectory()
        let path = dir.file("one.log")
        let writer = try writer(path, WriterOptions(bufferSize: 8 * 1024))
        for i in 0..<100_000 { submit(writer, "line \(i)\n") }
        writer.shutdown()
        #expect(!writer.lanesOn)
        #expect(try fileLines(path).count == 100_000)
    }
}
