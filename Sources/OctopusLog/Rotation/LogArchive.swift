/// Compressing and reading log archives the way Octopus's rotation does.
public enum LogArchive {
    /// Compresses `path` to `path.gz` crash-safely (temporary file, fsync, no-overwrite rename, then the source is
    /// removed) and returns the bytes compressed. Throws, leaving `path` in place, when anything fails.
    @discardableResult
    public static func compress(_ path: String, level: Int = 6) throws -> Int {
        try Archiver.compress(path, to: path + ".gz", level: Int32(max(1, min(9, level))))
    }

    /// The bytes of a gzip file; throws when it is incomplete or not gzip.
    public static func decompress(_ path: String) throws -> [UInt8] {
        try Archiver.decompress(path)
    }
}
