@_exported import Logging
@_exported import OctopusCluster
@_exported import OctopusConfig
@_exported import OctopusLog
@_exported import OctopusRPC
@_exported import OctopusSchedule
@_exported import ServiceLifecycle

/// The version `octopus --version` prints.
public enum OctopusVersion {
    public static let string = "0.4.0"
}
