import Octopus            // or OctopusLog
import Logging

func startLogging() async throws {
    let configuration = try LogConfiguration.load(directory: "config", environment: "production")
    let logging = try LogSystem(configuration)   // opens files; throws on a bad configuration
    logging.bootstrap()                          // LoggingSystem.bootstrap with Octopus's handler
    let logger = Logger(label: "db.pool")        // category "db.pool"
    logger.info("connected", metadata: ["host": "10.0.0.5"])
    try await logging.shutdown()                 // every line logged before this is on disk when it returns
}
