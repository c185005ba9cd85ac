using System.Reflection;
using CircuitBreaker.Http.Redis;
using OpenTelemetry.Metrics;

namespace CircuitBreaker.Http.Tests.Options;

public sealed class TrimmingTests
{
    // IsAotCompatible turns on the trim and AOT analyzers (warnings are errors here) and marks the assembly trimmable, so
    // that an app published with PublishTrimmed or PublishAot gets no warnings from the packages, and binding,
    // validation and the unknown-key check keep working after trimming.
    [Theory]
    [InlineData(typeof(CircuitBreakerOptions))]
    [InlineData(typeof(RedisCoordinationOptions))]
    [InlineData(typeof(CircuitBreakerMeterProviderBuilderExtensions))]
    public void EveryPackage_IsMarkedTrimmable(Type typeInPackage)
    {
        var metadata = typeInPackage.Assembly.GetCustomAttributes<AssemblyMetadataAttribute>();

        Assert.Contains(metadata, m => m.Key == "IsTrimmable" && m.Value == "True");
    }
}
