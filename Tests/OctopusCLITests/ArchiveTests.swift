import Foundation
import OctopusLog
import Testing
import TestSupport

#if canImport(Glibc)
import Glibc
#endif

/// Log-like text of about `megabytes` MB, varied enough that compression takes a while.
func sampleLog(megabytes: Int) -> [UInt8] {
    var text = ""
    var i = 0
    var seed: UInt64 = 42
    while text.utf8.count < megabytes * 1_000_000 {
        seed = seed &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        text += "2026-11-21 12:00:\(i % 60).\(i % 1000) [INFO] app - user \(seed % 100_000) logged in from 10.0.\(seed % 255).\(seed % 253) reqid=\(String(seed, radix: 16)) n=\(i)\n"
        i += 1
    }
    return Array(text.utf8)
}

/// What a SIGKILL of `octopus archive` left.
private struct Kill: Sendable {
    var hasSource: Bool
    var hasArchive: Bool
    var archiveWhole = true
    var sourceWhole = true
    var temporaryNamedAsArchive = false
}

@Suite struct ArchiveTests {
    @Test func gzipDecompressesAnArchiveToExactlyTheRolledBytes() async throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/app.log.1"
        let original = sampleLog(megabytes: 2)
        try Data(original).write(to: URL(fileURLWithPath: path))
        let outcome = try await octopus(["archive", path])
        #expect(outcome.status == 0)
        #expect(!FileManager.default.fileExists(atPath: path))
        let gzip = Process()
        gzip.executableURL = URL(fileURLWithPath: "/bin/gzip")
        gzip.arguments = ["-dc", path + ".gz"]
        let pipe = Pipe()
        gzip.standardOutput = pipe
        try gzip.run()
        let decompressed = pipe.fileHandleForReading.readDataToEndOfFile()
        gzip.waitUntilExit()
        #expect(gzip.terminationStatus == 0)
        #expect(Array(decompressed) == original)
    }

    @Test func archivingNeverOverwritesAnExistingArchive() async throws {
        let dir = try ScratchDirectory()
        let path = dir.path + "/app.log.1"
        try "new\n".write(toFile: path, atomically: true, encoding: .utf8)
        try "not really gzip".write(toFile: path + ".gz", atomically: true, encoding: .utf8)
        let outcome = try await octopus(["archive", path])
        #expect(outcome.status == 1)
        #expect(try String(contentsOfFile: path + ".gz", encoding: .utf8) == "not really gzip")
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "new\n")
    }

    /// SIGKILL the archiver at random moments: afterwards there is always the source whole, or a complete archive
    /// (or both, when the kill fell between the archive's rename and the source's removal), never neither and
    /// never a truncated `.gz`.
    @Test func aCrashWhileCompressingNeverLeavesABrokenArchiveOrLosesTheSource() async throws {
        let dir = try ScratchDirectory()
        let original = sampleLog(megabytes: 6)
        let path = dir.path + "/app.log.1"
        // How long one archive takes here, so the kills spread over the whole of it (and a little after).
        try Data(original).write(to: URL(fileURLWithPath: path))
        let started = ContinuousClock.now
        #expect(try await octopus(["archive", path]).status == 0)
        // (At most 2 s: measured while the whole suite runs, one archive has taken 14 s.)
        let microseconds = min(2_000_000, Int((ContinuousClock.now - started) / .microseconds(1)))
        // Fifty kills and what each left, on a thread of its own: spawning, waiting and comparing 6 MB fifty times would
        // hold a thread of the cooperative pool for as long (see `onThread`).
        let kills = try await onThread { () throws -> [Kill] in
            var kills: [Kill] = []
            for _ in 0..<50 {
                try? FileManager.default.removeItem(atPath: path + ".gz")
                try Data(original).write(to: URL(fileURLWithPath: path))
                let process = Process()
                process.executableURL = octopusBinary
                process.arguments = ["archive", path]
                process.standardError = FileHandle.nullDevice
                try process.run()
                usleep(UInt32.random(in: 0..<UInt32(microseconds * 6 / 5 + 1)))
                kill(process.processIdentifier, SIGKILL)
                process.waitUntilExit()

                var left = Kill(
                    hasSource: FileManager.default.fileExists(atPath: path),
                    hasArchive: FileManager.default.fileExists(atPath: path + ".gz"))
                if left.hasArchive { left.archiveWhole = try LogArchive.decompress(path + ".gz") == original }
                if left.hasSource, !left.hasArchive {
                    left.sourceWhole = try Data(contentsOf: URL(fileURLWithPath: path)) == Data(original)
                }
                let temporaries = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains(".gz.tmp-") }
                left.temporaryNamedAsArchive = temporaries.contains { $0.hasSuffix(".gz") }
                for temporary in temporaries { try FileManager.default.removeItem(atPath: dir.path + "/" + temporary) }
                kills.append(left)
            }
            return kills
        }
        var outcomes: [String: Int] = [:]
        for left in kills {
            #expect(left.hasSource || left.hasArchive, "both the source and the archive are gone")
            #expect(left.archiveWhole, "a broken archive")
            #expect(left.sourceWhole, "the source was changed")
            #expect(!left.temporaryNamedAsArchive)
            let key = left.hasArchive ? (left.hasSource ? "both" : "archive") : "source"
            outcomes[key, default: 0] += 1
        }
        // The random moments should have hit both before and after the rename (not a condition of correctness).
        print("crash outcomes: \(outcomes) (one archive took \(microseconds / 1000) ms)")
    }
}
