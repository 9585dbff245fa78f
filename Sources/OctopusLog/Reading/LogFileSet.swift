#if canImport(Glibc)
import Glibc
#endif
import Foundation

/// A log and its rolled siblings, oldest first, the hot file last: what `octopus tail` reads.
///
/// With the appender's rotation options the siblings are this appender's names exactly (by period, then index,
/// `.1` being the newest); without them, files whose names start with the log's name (or its stem, for
/// `keepFileExt` names) are taken and ordered by modification time (archives keep their file's time).
public struct LogFileSet: Sendable {
    public struct File: Sendable, Hashable {
        public var path: String
        public var compressed: Bool
    }

    /// The files, oldest first.
    public let files: [File]
    /// The file that is being written now (followed by `tail -f`).
    public let hotPath: String

    /// The files of the log at `path`, named as `rotation` names them when given.
    public init(path: String, rotation: RotationOptions? = nil, now: LogTimestamp = .now()) {
        let directory = (path as NSString).deletingLastPathComponent
        let dir = directory.isEmpty ? "." : directory
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        func full(_ name: String) -> String { dir + "/" + name }
        if let rotation {
            let names = RollingFileNames(path: path, keepFileExt: rotation.keepFileExt, separator: rotation.fileNameSep, compress: rotation.compress)
            let period = rotation.pattern.flatMap { RollPeriod(pattern: $0, timeZone: rotation.timeZone) }
            let rolled = entries.compactMap { names.parse($0, dated: period != nil, periodLength: period?.labelLength) }
                .sorted { a, b in
                    if a.period != b.period { return (a.period ?? "") < (b.period ?? "") }
                    if a.index != b.index { return (a.index ?? 0) > (b.index ?? 0) }  // higher index: older
                    return a.compressed && !b.compressed
                }
            let hot = Self.hotPath(of: path, rotation: rotation, now: now)
            var files = rolled.map { File(path: full($0.name), compressed: $0.compressed) }.filter { $0.path != hot }
            if FileManager.default.fileExists(atPath: hot) { files.append(File(path: hot, compressed: false)) }
            self.files = files
            self.hotPath = hot
            return
        }
        let name = (path as NSString).lastPathComponent
        let stem = (name as NSString).deletingPathExtension
        let candidates = entries.filter { entry in
            entry != name && (entry.hasPrefix(name + ".") || entry.hasPrefix(name + "_") || entry.hasPrefix(stem + ".")
                || entry.hasPrefix(stem + "_")) && !entry.contains(".rolling-") && !entry.contains(Archiver.temporaryMarker)
        }
        func modified(_ path: String) -> Double {
            var st = stat()
            return stat(path, &st) == 0 ? Double(st.st_mtim.tv_sec) + Double(st.st_mtim.tv_nsec) / 1e9 : 0
        }
        var files = candidates.map { File(path: full($0), compressed: $0.hasSuffix(".gz")) }
            .sorted { a, b in
                let (ma, mb) = (modified(a.path), modified(b.path))
                return ma != mb ? ma < mb : a.path > b.path
            }
        if FileManager.default.fileExists(atPath: path) { files.append(File(path: path, compressed: false)) }
        self.files = files
        self.hotPath = path
    }

    /// The file of the log at `path` that is written now: `path` itself, or with `alwaysIncludePattern` the
    /// current period's name.
    public static func hotPath(of path: String, rotation: RotationOptions?, now: LogTimestamp = .now()) -> String {
        guard let rotation, rotation.alwaysIncludePattern,
            let period = rotation.pattern.flatMap({ RollPeriod(pattern: $0, timeZone: rotation.timeZone) })
        else { return path }
        let names = RollingFileNames(path: path, keepFileExt: rotation.keepFileExt, separator: rotation.fileNameSep, compress: rotation.compress)
        return names.path(names.hotName(period: period.label(period.start(containing: now.seconds))))
    }

    /// The lines of one file (decompressed when it is an archive); the last line without its newline is kept.
    public static func lines(of file: File) throws -> [String] {
        let bytes: [UInt8]
        if file.compressed {
            bytes = try Archiver.decompress(file.path)
        } else {
            bytes = Array(try Data(contentsOf: URL(fileURLWithPath: file.path)))
        }
        return lines(of: bytes)
    }

    /// The lines of a file's bytes; the last line without its newline is kept.
    static func lines(of bytes: [UInt8]) -> [String] {
        var lines = bytes.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false).map {
            String(decoding: $0, as: UTF8.self)
        }
        if lines.last == "" { lines.removeLast() }
        return lines
    }
}
