import React, { type ReactNode } from 'react';
import clsx from 'clsx';
import Link from '@docusaurus/Link';
import Layout from '@theme/Layout';
import Translate, { translate } from '@docusaurus/Translate';
import styles from './index.module.css';

function Point({ icon, title, children }: { icon: ReactNode; title: ReactNode; children: ReactNode }): ReactNode {
  return (
    <li className={styles.point}>
      <span className={styles.pointIcon} aria-hidden="true">
        {icon}
      </span>
      <div>
        <strong className={styles.pointTitle}>{title}</strong>
        <span className={styles.pointText}>{children}</span>
      </div>
    </li>
  );
}

/** A picture of the lab, not a live terminal: a prompt, some output and two tasks. */
function LabPicture(): ReactNode {
  return (
    <div className={styles.picture} aria-hidden="true">
      <div className={styles.window}>
        <div className={styles.windowBar}>
          <span className={styles.windowDot} />
          <span className={styles.windowDot} />
          <span className={styles.windowDot} />
          <span className={styles.windowTitle}>root@sandbox</span>
        </div>
        <pre className={styles.windowBody}>
          <span className={styles.prompt}>root@sandbox:~# </span>ip -br link{'\n'}
          <span className={styles.dim}>lo        UNKNOWN  00:00:00:00:00:00</span>
          {'\n'}
          <span className={styles.dim}>eth0      UP       02:42:c0:00:02:0a</span>
          {'\n'}
          <span className={styles.dim}>docker0   DOWN     02:42:5e:1b:07:3c</span>
          {'\n'}
          <span className={styles.prompt}>root@sandbox:~# </span>docker run -d --name web-host --net=host nginx{'\n'}
          <span className={styles.dim}>3f9c2a71d0be58e4b1c6f0a2d9e7b3c45a1f08d26e9c4b7a0d3e5f1c2b8a9d4e6</span>
          {'\n'}
          <span className={styles.prompt}>root@sandbox:~# </span>ip netns add lab1{'\n'}
          <span className={styles.prompt}>root@sandbox:~# </span>
          <span className={styles.cursor} />
        </pre>
      </div>
      <div className={styles.tasks}>
        <div className={styles.tasksTitle}>
          <Translate id="home.picture.tasks">Lab tasks</Translate>
        </div>
        <div className={clsx(styles.task, styles.taskDone)}>
          <span className={styles.taskMark}>✓</span>
          <Translate id="home.picture.task1">nginx serves port 80 of the host</Translate>
        </div>
        <div className={clsx(styles.task, styles.taskDone)}>
          <span className={styles.taskMark}>✓</span>
          <Translate id="home.picture.task2">A namespace of your own</Translate>
        </div>
        <div className={styles.task}>
          <span className={styles.taskMark} />
          <Translate id="home.picture.task3">Its loopback is up</Translate>
        </div>
      </div>
    </div>
  );
}

export default function Home(): ReactNode {
  return (
    <Layout
      title={translate({ id: 'home.meta.title', message: 'Container networking, hands-on' })}
      description={translate({
        id: 'home.meta.description',
        message:
          'A course on how containers talk to the world, with a real terminal into a Docker host of your own, right in the browser.',
      })}
    >
      <main className={styles.home}>
        <div className={clsx('container', styles.hero)}>
          <div className={styles.copy}>
            <p className={styles.eyebrow}>
              <Translate id="home.eyebrow">A hands-on course on container networking</Translate>
            </p>
            <h1 className={styles.title}>
              <Translate id="home.title">Learn how containers talk, on a Docker host of your own</Translate>
            </h1>
            <ul className={styles.points}>
              <Point
                icon="▣"
                title={<Translate id="home.point1.title">A real Docker host in your browser</Translate>}
              >
                <Translate id="home.point1.text">
                  Each lesson opens a terminal into a private sandbox with its own dockerd, ip, iptables and tcpdump. You are root, and nothing you do leaves it.
                </Translate>
              </Point>
              <Point
                icon="⇄"
                title={<Translate id="home.point2.title">From network namespaces to two hosts</Translate>}
              >
                <Translate id="home.point2.text">
                  Network stacks, veth pairs, docker0, user-defined networks, NAT in both directions, then containers across two hosts.
                </Translate>
              </Point>
              <Point icon="✓" title={<Translate id="home.point3.title">Tasks turn green by themselves</Translate>}>
                <Translate id="home.point3.text">
                  Checks read the real state of your sandbox as you work. Get the kernel right and the task passes, whatever way you got there.
                </Translate>
              </Point>
            </ul>
            <div className={styles.actions}>
              <Link className={clsx('button button--primary button--lg', styles.start)} to="/docs/network-stack">
                <Translate id="home.start">Start lesson 1</Translate>
                <span aria-hidden="true"> →</span>
              </Link>
              <span className={styles.startNote}>
                <Translate id="home.startNote">The network stack of a container · about 20 minutes</Translate>
              </span>
            </div>
          </div>
          <LabPicture />
        </div>
      </main>
    </Layout>
  );
}
