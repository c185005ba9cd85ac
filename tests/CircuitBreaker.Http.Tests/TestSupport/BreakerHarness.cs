using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;
using RichardSzalay.MockHttp;

namespace CircuitBreaker.Http.Tests.TestSupport;

/// <summary>A named client with the breaker over a <see cref="MockHttpMessageHandler"/>, driven by a <see cref="FakeTimeProvider"/>.</summary>
internal sealed class BreakerHarness : IDisposable
{
    public const string ClientName = "users";

    private readonly ServiceProvider _services;

    /// <param name="configure">The breaker's options.</param>
    /// <param name="services">More services.</param>
    /// <param name="time">The clock, such as a <see cref="SteppedWallClock"/>; by default a <see cref="FakeTimeProvider"/> at 2026-01-01.</param>
    public BreakerHarness(Action<CircuitBreakerOptions>? configure = null, Action<IServiceCollection>? services = null, FakeTimeProvider? time = null)
    {
        Time = time ?? new(new DateTimeOffset(2026, 1, 1, 0, 0, 0, TimeSpan.Zero));
        var collection = new ServiceCollection();
        collection.AddSingleton<TimeProvider>(Time);
        collection.AddHttpClient(ClientName)
            .AddCircuitBreaker(configure ?? (_ => { }))
            .ConfigurePrimaryHttpMessageHandler(() => Mock);
        services?.Invoke(collection);
        _services = collection.BuildServiceProvider();
    }

    public FakeTimeProvider Time { get; }

    public MockHttpMessageHandler Mock { get; } = new();

    public IServiceProvider Services => _services;

    public ICircuitBreakerRegistry Registry => _services.GetRequiredService<ICircuitBreakerRegistry>();

    public HttpClient CreateClient(string name = ClientName) =>
        _services.GetRequiredService<IHttpClientFactory>().CreateClient(name);

    public CircuitInfo Circuit(string authority, string clientName = ClientName) =>
        Registry.GetCircuits().Single(c => c.Key == new CircuitKey(clientName, authority));

    public void Dispose()
    {
        _services.Dispose();
        Mock.Dispose();
    }
}
