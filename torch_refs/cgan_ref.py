"""PyTorch reference conditional GAN (Mirza & Osindero 2014) in the layout of the seed library's MNIST
model, conditioned on one-hot labels (written for the tests from the description; key names as
models/cgan.py)."""
import torch
from torch import nn


def _tile(y, h, w):
    return y[:, :, None, None].expand(-1, -1, h, w)


class CGANGeneratorRef(nn.Module):
    def __init__(self, nz=100, n_classes=10, gf_dim=128, img_size=28, nc=1):
        super().__init__()
        s = img_size // 4
        self.gf_dim, self.s = gf_dim, s
        self.fc1 = nn.Linear(nz + n_classes, gf_dim * 8)
        self.bn1 = nn.BatchNorm1d(gf_dim * 8)
        self.fc2 = nn.Linear(gf_dim * 8 + n_classes, gf_dim * s * s)
        self.bn2 = nn.BatchNorm1d(gf_dim * s * s)
        self.deconv1 = nn.ConvTranspose2d(gf_dim + n_classes, gf_dim, 4, 2, 1)
        self.bn3 = nn.BatchNorm2d(gf_dim)
        self.deconv2 = nn.ConvTranspose2d(gf_dim + n_classes, nc, 4, 2, 1)

    def forward(self, z, y):
        h = torch.relu(self.bn1(self.fc1(torch.cat([z, y], 1))))
        h = torch.relu(self.bn2(self.fc2(torch.cat([h, y], 1))))
        h = h.view(-1, self.gf_dim, self.s, self.s)
        h = torch.relu(self.bn3(self.deconv1(torch.cat([h, _tile(y, self.s, self.s)], 1))))
        return torch.tanh(self.deconv2(torch.cat([h, _tile(y, 2 * self.s, 2 * self.s)], 1)))


class CGANDiscriminatorRef(nn.Module):
    def __init__(self, n_classes=10, df_dim=64, img_size=28, nc=1):
        super().__init__()
        s = img_size // 4
        self.conv1 = nn.Conv2d(nc + n_classes, df_dim, 3, 2, 1)
        self.conv2 = nn.Conv2d(df_dim + n_classes, df_dim, 3, 2, 1)
        self.bn2 = nn.BatchNorm2d(df_dim)
        self.fc3 = nn.Linear(df_dim * s * s + n_classes, df_dim * 16)
        self.bn3 = nn.BatchNorm1d(df_dim * 16)
        self.fc4 = nn.Linear(df_dim * 16 + n_classes, 1)
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x, y):
        h = self.act(self.conv1(torch.cat([x, _tile(y, x.shape[2], x.shape[3])], 1)))
        h = self.act(self.bn2(self.conv2(torch.cat([h, _tile(y, h.shape[2], h.shape[3])], 1))))
        h = self.act(self.bn3(self.fc3(torch.cat([h.flatten(1), y], 1))))
        return torch.sigmoid(self.fc4(torch.cat([h, y], 1))).squeeze(1)
