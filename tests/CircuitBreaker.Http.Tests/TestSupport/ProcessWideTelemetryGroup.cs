namespace CircuitBreaker.Http.Tests.TestSupport;

/// <summary>
/// Tests that need the process's telemetry to themselves run here: alone, after every parallel test. An
/// <see cref="System.Diagnostics.ActivityListener"/> is process-wide, and the OpenTelemetry SDK listens to every
/// meter of the breaker's name in the process and shares one metric stream among identical instruments of
/// different meters: when another test's service provider is disposed, its meter's disposal deactivates the
/// shared stream, and points recorded by a live circuit can vanish from the next export.
/// </summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class ProcessWideTelemetryGroup
{
    public const string Name = "Process-wide telemetry, without parallel tests";
}
