using System.Net;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Options;
using Microsoft.Extensions.Time.Testing;
using RichardSzalay.MockHttp;

namespace CircuitBreaker.Http.Tests.DependencyInjection;

public sealed class CircuitBreakerExtensionsTests
{
    [Theory]
    [InlineData(false)]
    [InlineData(true)] // services.ConfigureHttpClientDefaults(b => b.AddCircuitBreaker()), as README lists it
    public async Task AddHttpClientThenAddCircuitBreaker_PutsABreakerOnEveryClientWithCircuitsOfItsOwn(bool asFactoryDefaults)
    {
        using var mock = new MockHttpMessageHandler();
        mock.When("*").Respond(HttpStatusCode.InternalServerError);
        var services = new ServiceCollection();
        services.AddSingleton<TimeProvider>(new FakeTimeProvider());
        if (asFactoryDefaults)
        {
            services.ConfigureHttpClientDefaults(b => b.AddCircuitBreaker(o => o.FailureThreshold = 1));
        }
        else
        {
            services.AddHttpClient().AddCircuitBreaker(o => o.FailureThreshold = 1);
        }

        services.ConfigureHttpClientDefaults(b => b.ConfigurePrimaryHttpMessageHandler(() => mock));
        services.AddHttpClient("users");
        using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IHttpClientFactory>();

        using (var defaultClient = factory.CreateClient())
        {
            (await defaultClient.GetAsync(new Uri("http://shared.test/"))).Dispose();
            await Assert.ThrowsAsync<CircuitOpenException>(() => defaultClient.GetAsync(new Uri("http://shared.test/")));
        }

        using var users = factory.CreateClient("users");
        using var response = await users.GetAsync(new Uri("http://shared.test/")); // its own circuit: still closed

        Assert.Equal(HttpStatusCode.InternalServerError, response.StatusCode);
        var circuits = provider.GetRequiredService<ICircuitBreakerRegistry>().GetCircuits();
        Assert.Equal(["", "users"], circuits.Select(c => c.ClientName).Order());
        Assert.Equal(CircuitState.Open, circuits.Single(c => c.ClientName == "users").State);
    }

    [Fact]
    public void AddCircuitBreaker_ForAllClientsAndForOne_AddsOneBreakerToThatClient()
    {
        var services = new ServiceCollection();
        services.AddCircuitBreaker();
        services.AddHttpClient("users").AddCircuitBreaker(o => o.FailureThreshold = 2);
        using var provider = services.BuildServiceProvider();

        var builder = provider.GetRequiredService<HttpMessageHandlerBuilder>();
        builder.Name = "users";
        foreach (var action in provider.GetRequiredService<IOptionsMonitor<HttpClientFactoryOptions>>().Get("users").HttpMessageHandlerBuilderActions)
        {
            action(builder);
        }

        Assert.Single(builder.AdditionalHandlers.OfType<CircuitBreakerHandler>());
        Assert.Equal(2, provider.GetRequiredService<IOptionsFactory<CircuitBreakerOptions>>().Create("users").FailureThreshold);
    }

    [Fact]
    public void AddCircuitBreaker_NoArguments_BindsTheCircuitBreakerSectionAndClientOverlay()
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(Configuration(new()
        {
            ["CircuitBreaker:FailureThreshold"] = "8",
            ["CircuitBreaker:Clients:users:BreakDuration"] = "00:00:05",
        }));
        services.AddHttpClient("users").AddCircuitBreaker();
        using var provider = services.BuildServiceProvider();

        var options = provider.GetRequiredService<IOptionsMonitor<CircuitBreakerOptions>>().Get("users");

        Assert.Equal(8, options.FailureThreshold);
        Assert.Equal(TimeSpan.FromSeconds(5), options.BreakDuration);
    }

    [Fact]
    public void AddCircuitBreaker_Section_BindsThatSection()
    {
        var configuration = Configuration(new() { ["Resilience:Breaker:HalfOpenProbes"] = "4" });
        var services = new ServiceCollection();
        services.AddHttpClient("users").AddCircuitBreaker(configuration.GetSection("Resilience:Breaker"));
        using var provider = services.BuildServiceProvider();

        Assert.Equal(4, provider.GetRequiredService<IOptionsMonitor<CircuitBreakerOptions>>().Get("users").HalfOpenProbes);
    }

    [Fact]
    public void AddCircuitBreaker_NamedClientDelegate_DoesNotTouchOtherClients()
    {
        var services = new ServiceCollection();
        services.AddHttpClient("users").AddCircuitBreaker(o => o.FailureThreshold = 2);
        using var provider = services.BuildServiceProvider();
        var monitor = provider.GetRequiredService<IOptionsMonitor<CircuitBreakerOptions>>();

        Assert.Equal(2, monitor.Get("users").FailureThreshold);
        Assert.Equal(5, monitor.Get("orders").FailureThreshold);
    }

    [Fact]
    public async Task StartAsync_InvalidSharedSection_FailsNamingTheKey()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["CircuitBreaker:FailureRatio"] = "2" });
        builder.Services.AddHttpClient().AddCircuitBreaker();
        using var host = builder.Build();

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("CircuitBreaker:FailureRatio", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task StartAsync_UnknownKeyForNamedClient_FailsNamingTheKey()
    {
        var builder = Host.CreateEmptyApplicationBuilder(new HostApplicationBuilderSettings());
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?> { ["CircuitBreaker:Clients:users:FailureTreshold"] = "3" });
        builder.Services.AddHttpClient("users").AddCircuitBreaker();
        using var host = builder.Build();

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => host.StartAsync());

        Assert.Contains("CircuitBreaker:Clients:users:FailureTreshold", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FirstRequest_InvalidOverlayOfAClientUnknownAtStartUp_FailsNamingClientAndKey()
    {
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(Configuration(new() { ["CircuitBreaker:Clients:users:HalfOpenProbes"] = "0" }));
        services.AddCircuitBreaker();
        using var provider = services.BuildServiceProvider();
        using var users = provider.GetRequiredService<IHttpClientFactory>().CreateClient("users");

        var ex = await Assert.ThrowsAsync<OptionsValidationException>(() => users.GetAsync(new Uri("http://users.test/")));

        Assert.Contains("Client 'users'", ex.Message, StringComparison.Ordinal);
        Assert.Contains("CircuitBreaker:HalfOpenProbes", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task FirstRequest_AfterAReloadFixedAnInvalidOverlay_Succeeds()
    {
        using var mock = new MockHttpMessageHandler();
        mock.When("*").Respond(HttpStatusCode.OK);
        var configuration = Configuration(new() { ["CircuitBreaker:Clients:users:HalfOpenProbes"] = "0" });
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(configuration);
        services.AddCircuitBreaker();
        services.AddHttpClient("users").ConfigurePrimaryHttpMessageHandler(() => mock);
        using var provider = services.BuildServiceProvider();
        var factory = provider.GetRequiredService<IHttpClientFactory>();
        using (var broken = factory.CreateClient("users"))
        {
            await Assert.ThrowsAsync<OptionsValidationException>(() => broken.GetAsync(new Uri("http://users.test/")));
        }

        configuration["CircuitBreaker:Clients:users:HalfOpenProbes"] = "2";
        configuration.Reload();
        using var users = factory.CreateClient("users");
        using var response = await users.GetAsync(new Uri("http://users.test/"));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public void Extensions_NullArguments_Throw()
    {
        IServiceCollection services = new ServiceCollection();
        var builder = services.AddHttpClient("users");

        Assert.Throws<ArgumentNullException>(() => ((IHttpClientBuilder)null!).AddCircuitBreaker());
        Assert.Throws<ArgumentNullException>(() => builder.AddCircuitBreaker((Action<CircuitBreakerOptions>)null!));
        Assert.Throws<ArgumentNullException>(() => builder.AddCircuitBreaker((IConfiguration)null!));
        Assert.Throws<ArgumentNullException>(() => ((IServiceCollection)null!).AddCircuitBreaker());
        Assert.Throws<ArgumentNullException>(() => services.AddCircuitBreaker((Action<CircuitBreakerOptions>)null!));
        Assert.Throws<ArgumentNullException>(() => services.AddCircuitBreaker((IConfiguration)null!));
    }

    [Fact]
    public void Extensions_ReturnTheBuilderForChaining()
    {
        IServiceCollection services = new ServiceCollection();
        var builder = services.AddHttpClient("users");

        Assert.Same(builder, builder.AddCircuitBreaker());
        Assert.Same(services, services.AddCircuitBreaker());
    }

    private static IConfigurationRoot Configuration(Dictionary<string, string?> settings) =>
        new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
}
