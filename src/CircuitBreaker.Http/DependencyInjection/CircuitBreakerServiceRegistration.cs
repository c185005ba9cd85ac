using CircuitBreaker.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection.Extensions;
using Microsoft.Extensions.Http;
using Microsoft.Extensions.Options;

namespace Microsoft.Extensions.DependencyInjection;

/// <summary>What every <c>AddCircuitBreaker</c> overload registers, for one client or (name <see langword="null"/>) for all.</summary>
internal static class CircuitBreakerServiceRegistration
{
    public static void AddFromAppConfiguration(IServiceCollection services, string? clientName)
    {
        AddCore(services, clientName);
        services.AddSingleton<IConfigureOptions<CircuitBreakerOptions>>(sp =>
        {
            var section = sp.GetService<IConfiguration>()?.GetSection(CircuitBreakerConfiguration.DefaultSectionName);
            return new CircuitBreakerConfiguration(clientName, section, FleetKey(sp, section));
        });
    }

    public static void AddFromSection(IServiceCollection services, string? clientName, IConfiguration section)
    {
        ArgumentNullException.ThrowIfNull(section);
        AddCore(services, clientName);
        services.AddSingleton<IConfigureOptions<CircuitBreakerOptions>>(sp => new CircuitBreakerConfiguration(clientName, section, FleetKey(sp, section)));
    }

    public static void AddFromDelegate(IServiceCollection services, string? clientName, Action<CircuitBreakerOptions> configure)
    {
        ArgumentNullException.ThrowIfNull(configure);
        AddCore(services, clientName);
        services.Configure(clientName, configure);
    }

    /// <summary>Registers <see cref="ICircuitFleetControl"/>, which also tells the binder that a package reads the <c>Fleet</c> section.</summary>
    public static void AddFleetControl(IServiceCollection services)
    {
        services.TryAddSingleton<ICircuitFleetControl>(sp => sp.GetRequiredService<CircuitBreakerRegistry>());
    }

    /// <summary>
    /// What the <c>Fleet</c> child of <paramref name="section"/> is: a coordination package reads the app's
    /// <c>CircuitBreaker:Fleet</c>, so in a section bound from elsewhere (<c>AddCircuitBreaker(configuration.GetSection("Http:Breaker"))</c>)
    /// it is read by nobody. The app's configuration and its sections share one reload token, as <see cref="CircuitBreakerRegistry"/> relies on too.
    /// </summary>
    private static CircuitBreakerConfiguration.FleetKeyUse FleetKey(IServiceProvider sp, IConfiguration? section)
    {
        // Asked of the container rather than resolved: resolving the registry here would need these very options.
        if (sp.GetService<IServiceProviderIsService>()?.IsService(typeof(ICircuitFleetControl)) != true)
        {
            return CircuitBreakerConfiguration.FleetKeyUse.Unknown;
        }

        return section is IConfigurationSection { Path: var path }
            && string.Equals(path, CircuitBreakerConfiguration.DefaultSectionName, StringComparison.OrdinalIgnoreCase)
            && sp.GetService<IConfiguration>() is { } app
            && ReferenceEquals(app.GetReloadToken(), section.GetReloadToken())
                ? CircuitBreakerConfiguration.FleetKeyUse.ReadHere
                : CircuitBreakerConfiguration.FleetKeyUse.ReadElsewhere;
    }

    private static void AddCore(IServiceCollection services, string? clientName)
    {
        services.AddHttpClient();
        services.AddMetrics();
        services.TryAddSingleton(TimeProvider.System);
        services.TryAddSingleton<CircuitBreakerRegistry>();
        services.TryAddSingleton<ICircuitBreakerRegistry>(sp => sp.GetRequiredService<CircuitBreakerRegistry>());
        services.TryAddEnumerable(ServiceDescriptor.Singleton<IValidateOptions<CircuitBreakerOptions>, CircuitBreakerOptionsValidator>());

        // For every client the names are not known yet: the shared section is validated under the default name, and
        // the clients its configuration overlays by name (Clients:{name}) are validated by ClientOverlayValidation.
        services.AddOptions<CircuitBreakerOptions>(clientName ?? Options.Options.DefaultName).ValidateOnStart();
        ClientOverlayValidation.Register(services, clientName);

        services.Configure<HttpClientFactoryOptions>(clientName, options => options.HttpMessageHandlerBuilderActions.Add(builder =>
        {
            // Registered for all clients and again for one: that client still gets one breaker, not two.
            if (builder.AdditionalHandlers.Any(h => h is CircuitBreakerHandler))
            {
                return;
            }

            var registry = builder.Services.GetRequiredService<CircuitBreakerRegistry>();
            builder.AdditionalHandlers.Add(new CircuitBreakerHandler(registry.GetClient(builder.Name ?? Options.Options.DefaultName), registry.TimeProvider));
        }));
    }
}
