/*
 * devstack: start one embedded OpenSearch 3.x node (single-node discovery) in this JVM.
 *
 * Usage: java -cp "<classes>:<opensearch 3 jars>/*" DevstackOpenSearch3 NODE_HOME
 *
 * NODE_HOME/config holds opensearch.yml and log4j2.properties (written by
 * devstack/lib/searchnode.sh). The classes named by -Ddevstack.plugins (comma-separated: the
 * transport-netty4 and analysis-common modules from Maven Central) are loaded as classpath
 * plugins; one missing from the classpath is an error. 3.x differs from the 2.x launcher
 * (DevstackOpenSearch.java): the Node constructor takes PluginInfo objects naming the plugin
 * classes, and the plugin classes were renamed. Needs Java 21+. SIGTERM closes the node cleanly.
 */

import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collections;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.opensearch.Version;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.PluginInfo;

public final class DevstackOpenSearch3 {

    private DevstackOpenSearch3() {}

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
            System.err.println("usage: DevstackOpenSearch3 NODE_HOME");
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
        Files.createDirectories(env.modulesDir());
        Files.createDirectories(env.pluginsDir());

        final String[] classes = pluginClasses();
        final List<PluginInfo> plugins = new ArrayList<>();
        for (final String className : classes) {
            Class.forName(className); // fail loudly here rather than start without a module
            final String name = className.substring(className.lastIndexOf('.') + 1);
            plugins.add(new PluginInfo(name, "classpath plugin " + className, "NA", Version.CURRENT,
                    System.getProperty("java.specification.version"), className, Collections.emptyList(), false));
        }
        System.out.println("[devstack] classpath plugins: " + String.join(", ", classes));

        final Node node = new Node(env, plugins, true) {};
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
